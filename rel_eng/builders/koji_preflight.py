"""What a production Koji hub is asked before a compose writes or submits anything.

taken_builds  which planned non-scratch NVRs exist on the hub already (getBuild), or belong to
              an open `image` task (listTasks: queued tasks have no build yet). NVRs are
              unique per hub: allocation counts the label or respin up past them, so a
              milestone composed from a fresh output dir, or on another host, or a second
              after another compose, does not reuse `1.1`.
preflight     the checks koji's own CLI makes before it uploads: the target exists
              (getBuildTarget), its build tag's arches cover the planned arches (getTag), and,
              for non-scratch builds, each image name is in the destination tag's package list
              (checkTagPackage). The hub queues buildImageOz without any of these checks; kojid
              fails the task later, after the compose has started.

permission   the login the builds will use, and `hasPerm('image') or hasPerm('admin')`, the
              check kojihub's buildImageOz makes (assertPerm('image')): a user without it is
              refused before the compose dir exists, not after the kickstart upload.

Reads only (after the login), one multicall round trip per question asked of every image.
"""

from __future__ import annotations

import koji

from rel_eng.builders import koji_opts
from rel_eng.builders.koji_session import (HubError, HubProfile, fault_text, new_session,
                                           read_profile, with_retries)
from rel_eng.errors import ConfigError
from rel_eng.plan import DropPlan

# kojihub's recycle_build (koji 1.35, kojihub/kojihub.py, reached from initImageBuild through
# new_build) takes over the NVR of a FAILED or CANCELED build only when that build has no tag
# history, no rpms and no archives; in any other state the NVR is taken.
REUSABLE = (koji.BUILD_STATES["FAILED"], koji.BUILD_STATES["CANCELED"])


class Hub:
    """A read-only session on the configured profile, made on first use."""

    def __init__(self, config, session: koji.ClientSession | None = None):
        self.config = config
        self._session = session
        self._profile: HubProfile | None = None

    @property
    def profile(self) -> HubProfile:
        if self._profile is None:
            self._profile = read_profile(self.config.koji)
        return self._profile

    def login(self) -> None:
        """Log in the way the builder will (kojihub refuses buildImageOz anonymously)."""
        from rel_eng.builders.koji_session import NOAUTH, login

        if self.profile.authtype in NOAUTH:
            raise ConfigError([f"koji profile '{self.profile.name}' has authtype "
                               f"{self.profile.authtype}: submitting image builds needs a login "
                               "(use a profile with authtype ssl or gssapi)"])
        if self._session is None:
            self._session = new_session(self.profile)
        # A refused login is LoginRefused (exit 2); an unreachable hub a HubError, as for
        # every other question asked before the compose exists.
        with_retries(lambda: login(self._session, self.profile), "logging in", self.profile,
                     self.config.koji)

    def multicall(self, what: str, ask):
        """{key: result} of `ask(m)` -> {key: call}, in one round trip, retried when unsent."""
        if self._session is None:
            self._session = new_session(self.profile)
        session = self._session

        def once():
            with session.multicall() as m:
                calls = ask(m)
            out = {}
            for key, call in calls.items():
                try:
                    out[key] = call.result
                except koji.GenericError as exc:
                    raise HubError(f"koji hub {self.profile.server}: {what}: "
                                   f"{fault_text(exc)}") from None
            return out

        return with_retries(once, what, self.profile, self.config.koji)


def scratch(plan: DropPlan, config) -> bool:
    return plan.weekly and config.koji.scratch_weeklies


def planned_nvrs(plan: DropPlan, config) -> list[str]:
    """The builds a compose of `plan` makes on the hub; scratch builds make none."""
    if scratch(plan, config):
        return []
    return sorted({f"{j.name}-{j.version}-{j.release}" for j in plan.images})


# An `image` task holds its NVR from submission: kojid's BuildBaseImageTask makes the build
# (host.initImageBuild) only once it starts, so a queued task is invisible to getBuild.
OPEN_TASK_STATES = [koji.TASK_STATES[s] for s in ("FREE", "OPEN", "ASSIGNED")]


def taken_builds(hub: Hub, nvrs: list[str]) -> dict[str, str]:
    """nvr -> why it is taken, for each of `nvrs` that exists on the hub and is not reusable,
    or that an open `image` task (queued or running, not scratch) will build."""
    if not nvrs:
        return {}
    wanted = set(nvrs)

    def ask(m):
        out = {("build", n): m.getBuild(n) for n in nvrs}
        out["tasks"] = m.listTasks({"method": "image", "state": OPEN_TASK_STATES,
                                    "decode": True})
        return out

    found = hub.multicall("looking up builds and open image tasks", ask)
    taken = {}
    for task in found["tasks"] or []:
        nvr = _task_nvr(task)
        if nvr in wanted and nvr not in taken:
            state = koji.TASK_STATES.get(task.get("state"), "open")
            taken[nvr] = (f"koji task {task.get('id')} ({state}) builds it on "
                          f"{hub.profile.server}")
    builds = {key[1]: b for key, b in found.items() if key != "tasks" and b}
    where = {nvr: f"koji build {b['id']} ({koji.BUILD_STATES[b['state']]}) on {hub.profile.server}"
             for nvr, b in builds.items()}
    for nvr, b in builds.items():
        if b["state"] not in REUSABLE:
            taken[nvr] = where[nvr]
    failed = {nvr: b["id"] for nvr, b in builds.items()
              if b["state"] in REUSABLE and nvr not in taken}
    if failed:
        def ask_recycle(m):
            out = {}
            for nvr, bid in failed.items():
                out[("history", nvr)] = m.queryHistory(tables=["tag_listing"], build=bid)
                out[("archives", nvr)] = m.listArchives(buildID=bid)
                out[("rpms", nvr)] = m.listRPMs(buildID=bid)
            return out

        left = hub.multicall("checking whether failed builds can be recycled", ask_recycle)
        for nvr in failed:
            if (left[("history", nvr)] or {}).get("tag_listing"):
                taken[nvr] = where[nvr] + ", which was tagged once, so koji will not recycle it"
            elif left[("archives", nvr)] or left[("rpms", nvr)]:
                taken[nvr] = where[nvr] + ", which has files imported, so koji will not recycle it"
    return dict(sorted(taken.items()))


def _task_nvr(task: object) -> str | None:
    """The NVR a non-scratch `image` task will build, from its request
    [name, version, arches, target, inst_tree, opts]; None when it has none (scratch, no
    release yet, or a request of another shape)."""
    request = task.get("request") if isinstance(task, dict) else None
    if not isinstance(request, (list, tuple)) or len(request) < 6:
        return None
    name, version, opts = request[0], request[1], request[5]
    if not isinstance(opts, dict) or opts.get("scratch"):
        return None
    release = opts.get("release")
    if not all(isinstance(v, str) and v for v in (name, version, release)):
        return None
    return f"{name}-{version}-{release}"


def preflight(plan: DropPlan, config, hub: Hub | None = None) -> None:
    """Every check koji's CLI makes before submitting; all failures at once, one line each."""
    hub = hub or Hub(config)
    hub.login()
    perms = hub.multicall("checking the image permission",
                          lambda m: {p: m.hasPerm(p) for p in ("image", "admin")})
    user = hub.multicall("asking who is logged in", lambda m: {"me": m.getLoggedInUser()})["me"]
    calls = koji_opts.image_calls(list(plan.images), config, weekly=plan.weekly,
                                  kickstarts=koji_opts.planned_kickstarts(plan.images, config),
                                  release=config.release(plan.release_key))
    server = hub.profile.server
    names = sorted({c.target for c in calls})
    targets = hub.multicall("checking build targets",
                            lambda m: {t: m.getBuildTarget(t) for t in names})
    problems = []
    if not (perms["image"] or perms["admin"]):  # kojihub's assertPerm('image') in buildImageOz
        name = (user or {}).get("name") or "the profile's user"
        problems.append(f"koji user {name} on {server} lacks the 'image' permission "
                        f"(profile {hub.profile.name}): ask the Koji admins for it "
                        f"(koji grant-permission image {name})")
    problems += [f"koji target '{t}' does not exist on {server}: ask the Koji admins for it "
                f"(koji add-target {t} BUILD_TAG DEST_TAG), or set koji_target in "
                f"{config.releases_file} / [koji] target" for t in names if not targets[t]]
    known = [c for c in calls if targets[c.target]]
    build_tags = sorted({targets[c.target]["build_tag_name"] for c in known})
    need_pkgs = sorted({(targets[c.target]["dest_tag_name"], c.name) for c in known
                        if not c.opts.get("scratch")})

    def ask(m):
        out = {("tag", t): m.getTag(t) for t in build_tags}
        out.update({("pkg", tag, name): m.checkTagPackage(tag, name) for tag, name in need_pkgs})
        return out

    answers = hub.multicall("checking build tags and package lists", ask) if known else {}
    for tag in build_tags:
        info = answers[("tag", tag)]
        have = {koji.canonArch(a) for a in ((info or {}).get("arches") or "").split()}
        want = sorted({a for c in known if targets[c.target]["build_tag_name"] == tag
                       for a in c.arches})
        missing = [a for a in want if a not in have]
        if missing:
            listed = " ".join(sorted(have)) or "none"
            problems.append(
                f"koji build tag '{tag}' on {server} has arches {listed}, not "
                f"{', '.join(missing)}: ask the Koji admins to add them "
                f"(koji edit-tag {tag} --arches \"{' '.join(sorted(have | set(missing)))}\"), "
                "or leave them out of [compose] arches")
    absent = [(tag, name) for tag, name in need_pkgs if not answers[("pkg", tag, name)]]
    if absent:
        problems.append(_missing_packages_line(absent, server))
    if problems:
        raise ConfigError(problems)  # exit 2, one line each; nothing was uploaded or submitted


def _missing_packages_line(absent: list[tuple[str, str]], server: str) -> str:
    """One line for every image missing from a destination tag's package list: the images,
    and the one `koji add-pkg` per tag (it takes many packages) that adds them all."""
    by_tag: dict[str, list[str]] = {}
    for tag, name in sorted(absent):
        by_tag.setdefault(tag, []).append(name)
    fixes = "; ".join(f"koji add-pkg --owner USER {tag} {' '.join(names)}"
                      for tag, names in by_tag.items())
    one = len(absent) == 1
    ask = f"ask the Koji admins to add {'it' if one else 'them'} ({fixes})"
    if len(by_tag) == 1:
        [(tag, names)] = by_tag.items()
        return (f"{'image' if one else 'images'} {', '.join(names)} "
                f"{'is' if one else 'are'} not in the package list of koji tag '{tag}' on "
                f"{server}: {ask}")
    where = "; ".join(f"{', '.join(names)} from tag '{tag}'" for tag, names in by_tag.items())
    return f"images are missing from koji tag package lists on {server}: {where}: {ask}"
