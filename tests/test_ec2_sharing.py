"""Sharing per region (moto server): Block Public Access, organizations and OUs, deprecation
right after registration, the SSM "latest" pointer, share_ec2(public=) and unshare_ec2.

moto implements launch permissions (organization and OU ARNs included), createVolumePermission
and SSM parameters; it lacks the two Block Public Access reads and EnableImageDeprecation, which
tests/moto_gaps.py answers in front of it from the per-region state each test sets, keeping
every request for the test to check.
"""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest

from ec2_helpers import (  # noqa: F401
    BASE, REGIONS, aws_env, config_with, ec2_config, ec2_error, ec2_jobs, make_compose,
    moto_gaps, moto_url, recording_session,
)
from moto_gaps import DEPRECATE, IMAGE_BPA, SNAPSHOT_BPA
from rel_eng.config import load_config
from rel_eng.errors import ConfigError, InputError
from rel_eng.publish import ec2_sharing
from rel_eng.publish.ec2_publish import publish_ec2, share_ec2, unshare_ec2
from rel_eng.publish.ec2_results import load_results, results_path

ALL = (BASE, *REGIONS)
ORG = "arn:aws:organizations::123456789012:organization/o-abcdefghij"
OU = "arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-cdefgh34"
PREFIX = "/rel-eng/fedora"
QUIET = lambda line: None  # noqa: E731


def permissions(region: str, image_id: str) -> tuple[list[dict], list[dict]]:
    """(launch permissions of the AMI, createVolumePermissions of its snapshot), as moto has them."""
    ec2 = boto3.client("ec2", region_name=region)
    launch = ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"]
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    snap = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    volume = ec2.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
    return launch, volume["CreateVolumePermissions"]


def pointer(region: str, arch: str, stream: str = "19") -> dict | None:
    ssm = boto3.client("ssm", region_name=region)
    found = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [
        f"{PREFIX}/{stream}/{arch}/latest"]}])["Parameters"]
    if not found:
        return None
    return {**found[0], **ssm.get_parameter(Name=found[0]["Name"])["Parameter"]}


def test_a_blocking_region_stays_private_and_the_rest_of_the_drop_is_shared(moto_gaps, tmp_path):
    moto_gaps.image_bpa[REGIONS[0]] = "block-new-sharing"
    moto_gaps.snapshot_bpa[REGIONS[1]] = "block-all-sharing"
    moto_gaps.managed_by[REGIONS[1]] = "declarative-policy"
    topdir, plan = make_compose(tmp_path)
    cfg = config_with(ec2_config(share_organizations=(ORG,), share_organizational_units=(OU,),
                                 ssm_prefix=PREFIX, i386=False))
    lines: list[str] = []
    # A milestone's AMIs are made public by its release: staged private, then shared.
    publish_ec2(topdir, cfg, session=recording_session()[0], out=lines.append, share=False)
    report = share_ec2(topdir, cfg, public=True, session=recording_session()[0], out=lines.append)

    # each region's two settings read once for the whole drop, before anything was public
    assert sorted(r for r, _ in moto_gaps.sent(IMAGE_BPA)) == sorted(ALL)
    assert sorted(r for r, _ in moto_gaps.sent(SNAPSHOT_BPA)) == sorted(ALL)
    assert report.blocked == {
        REGIONS[0]: f"{REGIONS[0]}: image block public access is block-new-sharing, the AMIs stay "
                    f"private there (lift it with `aws ec2 disable-image-block-public-access "
                    f"--region {REGIONS[0]}`; then share again)",
        REGIONS[1]: f"{REGIONS[1]}: snapshot block public access is block-all-sharing, the AMIs "
                    "stay private there (the snapshot setting comes from the organization's "
                    "declarative policy: change it there; then share again)",
    }
    orgs = [{"OrganizationArn": ORG}, {"OrganizationalUnitArn": OU}]
    assert [r.job.arch for r in report.images] == ["x86_64"]
    for r in report.images:
        assert r.visibility == {BASE: "public", REGIONS[0]: "blocked", REGIONS[1]: "blocked"}
        assert r.public is False  # not public everywhere
        launch, volume = permissions(BASE, r.amis[BASE])
        assert sorted(map(json.dumps, launch)) == sorted(map(json.dumps, [{"Group": "all"}, *orgs]))
        assert volume == [{"Group": "all"}]
        for region in REGIONS:  # private to the public, still shared with the organization
            launch, volume = permissions(region, r.amis[region])
            assert sorted(map(json.dumps, launch)) == sorted(map(json.dumps, orgs))
            assert volume == []
        # the pointer only where the AMI is public
        assert pointer(BASE, r.job.arch)["Value"] == r.amis[BASE]
        assert pointer(BASE, r.job.arch)["DataType"] == "aws:ec2:image"
        assert [pointer(region, r.job.arch) for region in REGIONS] == [None, None]

    data = load_results(topdir)
    assert data["blocked_regions"] == report.blocked
    for nvra, entry in data["images"].items():  # non-empty: one image, asserted above
        assert entry["visibility"] == {BASE: "public", REGIONS[0]: "blocked", REGIONS[1]: "blocked"}
        assert entry["ssm"] == {BASE: f"{PREFIX}/19/{entry['arch']}/latest"}
        assert entry["shared_with"] == {"organizations": [ORG], "organizational_units": [OU]}
    # the message names only the AMIs users can launch
    bodies = [json.loads(line)["body"] for line in lines]
    assert [b["image_name"] for b in bodies] == [j.nvra for j in ec2_jobs(plan) if j.arch == "x86_64"]
    assert all(list(b["regions"]) == [BASE] for b in bodies)

    # sharing again changes nothing: same permissions, the pointer keeps its version
    before = {r.job.nvra: {region: permissions(region, a) for region, a in r.amis.items()}
              for r in report.images}
    again = share_ec2(topdir, cfg, public=True, session=recording_session()[0], out=QUIET)
    assert {r.job.nvra: {region: permissions(region, a) for region, a in r.amis.items()}
            for r in again.images} == before
    assert [pointer(BASE, r.job.arch)["Version"] for r in again.images] == [1]

    # once lifted, a rerun makes those regions public too
    moto_gaps.image_bpa.clear()
    moto_gaps.snapshot_bpa.clear()
    lifted = share_ec2(topdir, cfg, public=True, session=recording_session()[0], out=QUIET)
    assert lifted.blocked == {}
    assert [r.job.arch for r in lifted.images] == ["x86_64"]
    for r in lifted.images:  # non-empty: asserted just above
        assert r.public and set(r.visibility.values()) == {"public"}
        assert all(pointer(region, r.job.arch)["Value"] == r.amis[region] for region in ALL)
    assert load_results(topdir)["blocked_regions"] == {}


def test_a_setting_turned_on_while_sharing_leaves_nothing_public(moto_gaps, tmp_path):
    """GetImageBlockPublicAccessState may say "unblocked" for minutes after the setting is
    turned on; ModifyImageAttribute then refuses with OperationNotPermitted."""
    topdir, plan = make_compose(tmp_path)
    cfg = config_with(ec2_config(regions=(REGIONS[0],), i386=False))
    publish_ec2(topdir, cfg, session=recording_session()[0], share=False)
    session, rec = recording_session()

    def refuse(params, context, **kw):
        body = params["body"]
        if context.get("client_region") == REGIONS[0] and body.get("LaunchPermission.Add.1.Group") == "all":
            return ec2_error("OperationNotPermitted"), {
                "Error": {"Code": "OperationNotPermitted", "Message": "block public access"},
                "ResponseMetadata": {"HTTPStatusCode": 400}}
        return None

    session.events.register("before-call.ec2.ModifyImageAttribute", refuse)
    report = share_ec2(topdir, cfg, public=True, session=session, out=QUIET)
    assert set(report.blocked) == {REGIONS[0]}
    assert "OperationNotPermitted" in report.blocked[REGIONS[0]]
    assert len(report.images) == 1
    for r in report.images:
        assert r.visibility == {BASE: "public", REGIONS[0]: "blocked"}
        assert permissions(REGIONS[0], r.amis[REGIONS[0]]) == ([], [])  # its snapshot taken back
        assert permissions(BASE, r.amis[BASE]) == ([{"Group": "all"}], [{"Group": "all"}])


def test_milestones_are_deprecated_right_after_registration(moto_gaps, tmp_path):
    topdir, plan = make_compose(tmp_path)
    session, rec = recording_session()
    report = publish_ec2(topdir, config_with(ec2_config()), session=session, out=QUIET)

    order = [(op, region) for op, region, _ in rec.calls]
    for r in report.images:  # non-empty: one image, len asserted above
        base = boto3.client("ec2", region_name=BASE).describe_images(ImageIds=[r.amis[BASE]])["Images"][0]
        created = dt.datetime.fromisoformat(base["CreationDate"].replace("Z", "+00:00"))
        expected = (created + dt.timedelta(days=730)).replace(second=0, microsecond=0)
        assert r.deprecate_at == expected
        sent = {p["ImageId"]: (region, p["DeprecateAt"]) for region, p in moto_gaps.sent(DEPRECATE)}
        assert {sent[a][0] for a in r.amis.values()} == set(ALL)
        assert {dt.datetime.fromisoformat(sent[a][1].replace("Z", "+00:00")) for a in r.amis.values()} == {expected}
    # set before anything is copied; nothing is shared at staging (the release does that)
    first_deprecation = order.index(("EnableImageDeprecation", BASE))
    assert first_deprecation < order.index(("CopyImage", REGIONS[0]))
    assert [op for op, _ in order if op == "ModifyImageAttribute"] == []
    assert all(e["deprecate_at"] for e in load_results(topdir)["images"].values())


def test_milestone_deprecation_off(moto_gaps, tmp_path):
    topdir, _ = make_compose(tmp_path)
    report = publish_ec2(topdir, config_with(ec2_config(milestone_deprecate_days=0, regions=(), i386=False)),
                         session=recording_session()[0], out=QUIET)
    assert moto_gaps.sent(DEPRECATE) == []
    assert [r.deprecate_at for r in report.images] == [None]


def test_public_at_release_then_taken_back(moto_gaps, tmp_path):
    topdir, plan = make_compose(tmp_path)
    cfg = config_with(ec2_config(public_milestones=False, ssm_prefix=PREFIX, regions=(REGIONS[0],),
                                 i386=False))
    publish_ec2(topdir, cfg, session=recording_session()[0], share=False)
    regions = (BASE, REGIONS[0])

    staged = share_ec2(topdir, cfg, session=recording_session()[0], out=QUIET)  # the config's rule
    assert moto_gaps.sent(IMAGE_BPA) == []  # nothing to make public, nothing to read
    assert [r.job.arch for r in staged.images] == ["x86_64"]
    for r in staged.images:  # non-empty: asserted just above
        assert r.visibility == dict.fromkeys(regions, "private")
        assert [permissions(region, r.amis[region]) for region in regions] == [([], [])] * 2
        assert pointer(BASE, r.job.arch) is None

    released = share_ec2(topdir, cfg, public=True, session=recording_session()[0], out=QUIET)
    assert sorted(r for r, _ in moto_gaps.sent(IMAGE_BPA)) == sorted(regions)
    assert [r.job.arch for r in released.images] == ["x86_64"]
    for r in released.images:  # non-empty: asserted just above
        assert r.public and r.visibility == dict.fromkeys(regions, "public")
        assert [pointer(region, r.job.arch)["Value"] for region in regions] == [r.amis[x] for x in regions]

    before = results_path(topdir).read_bytes()
    with pytest.raises(InputError, match="unknown way 'withdraw'") as exc:
        unshare_ec2(topdir, cfg, how="withdraw", session=recording_session()[0], out=QUIET)
    assert exc.value.exit_code == 2 and results_path(topdir).read_bytes() == before

    # someone also gave an account the snapshot: "private" takes back every permission
    snap_region = REGIONS[0]
    some = released.images[0]
    ec2 = boto3.client("ec2", region_name=snap_region)
    snap = ec2.describe_images(ImageIds=[some.amis[snap_region]])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    ec2.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission",
                                  OperationType="add", UserIds=["210987654321"])
    taken = unshare_ec2(topdir, cfg, how="private", session=recording_session()[0], out=QUIET)
    assert [r.job.arch for r in taken.images] == ["x86_64"]
    for r in taken.images:  # non-empty: asserted just above
        assert not r.public and r.visibility == dict.fromkeys(regions, "private")
        assert [permissions(region, r.amis[region]) for region in regions] == [([], [])] * 2
        assert [pointer(region, r.job.arch) for region in regions] == [None, None]
    data = load_results(topdir)
    assert all(e["ssm"] == {} and e["public"] is False for e in data["images"].values())
    assert unshare_ec2(topdir, cfg, how="private", session=recording_session()[0], out=QUIET).images

    # "deprecate": now, rounded up to the minute, in every region
    moment = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.timezone.utc)
    gone = unshare_ec2(topdir, cfg, how="deprecate", session=recording_session()[0], out=QUIET,
                       now=lambda: moment)
    when = dt.datetime(2026, 3, 4, 5, 7, tzinfo=dt.timezone.utc)
    assert [r.deprecate_at for r in gone.images] == [when]
    sent = [(region, p["ImageId"], p["DeprecateAt"]) for region, p in moto_gaps.sent(DEPRECATE)
            if p["DeprecateAt"].startswith("2026-03-04")]
    assert sorted(sent) == sorted((region, r.amis[region], "2026-03-04T05:07:00Z")
                                  for r in gone.images for region in regions)
    assert {e["deprecate_at"] for e in load_results(topdir)["images"].values()} == {when.isoformat()}


def test_the_pointer_never_moves_back_to_an_older_compose(moto_gaps, tmp_path):
    cfg = config_with(ec2_config(regions=(), ssm_prefix=PREFIX, weekly_public=True, i386=False))
    newer, _ = make_compose(tmp_path / "new", weekly=True, date=dt.date(2013, 4, 12))
    older, _ = make_compose(tmp_path / "old", weekly=True, date=dt.date(2013, 4, 5))
    new_report = publish_ec2(newer, cfg, session=recording_session()[0], out=QUIET)
    old_report = publish_ec2(older, cfg, session=recording_session()[0], out=QUIET)
    assert [r.visibility for r in old_report.images] == [{BASE: "public"}]
    assert len(new_report.images) == 1
    for r in new_report.images:
        found = pointer(BASE, r.job.arch, stream="19-weekly")
        assert found["Value"] == r.amis[BASE] and found["Version"] == 1
        assert found["Description"] == new_report.compose_id


def test_block_line_names_each_setting_and_its_command():
    block = ec2_sharing.Block("ap-south-1", (("image", "block-new-sharing", "account"),
                                             ("snapshot", "block-new-sharing", "account")))
    assert block.line() == (
        "ap-south-1: image block public access is block-new-sharing and snapshot block public "
        "access is block-new-sharing, the AMIs stay private there (lift it with "
        "`aws ec2 disable-image-block-public-access --region ap-south-1` and "
        "`aws ec2 disable-snapshot-block-public-access --region ap-south-1`; then share again)")


@pytest.mark.parametrize("key, value, message", [
    ("share_organizations", '["arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-cdefgh34"]',
     "'arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-cdefgh34' is not such an ARN "
     "(e.g. arn:aws:organizations::123456789012:organization/o-abcdefghij)"),
    ("share_organizational_units", '["ou-ab12-cdefgh34"]',
     "'ou-ab12-cdefgh34' is not such an ARN "
     "(e.g. arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-cdefgh34)"),
    ("share_organizations", f'["{ORG}", "{ORG}"]', "lists an ARN twice"),
    ("ssm_prefix", '"rel-eng/fedora"',
     "'rel-eng/fedora' is not a parameter path (e.g. \"/rel-eng/fedora\": /-separated letters, "
     "digits, _ . -)"),
    ("ssm_prefix", '"/aws/service/fedora"',
     "'/aws/service/fedora': names beginning with aws or ssm belong to AWS (choose another first level)"),
    ("milestone_deprecate_days", "-1", None),
])
def test_sharing_settings_are_refused_with_file_and_key(tmp_path, key, value, message):
    path = tmp_path / "rel-eng.toml"
    path.write_text(f"[ec2]\nenabled = true\n{key} = {value}\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert exc.value.exit_code == 2 and len(exc.value.problems) == 1
    assert exc.value.problems[0].startswith(f"{path}: ec2.{key}: ")
    if message:
        assert exc.value.problems[0] == f"{path}: ec2.{key}: {message}"


def test_sharing_settings_parse():
    cfg = ec2_config(share_organizations=(ORG,), share_organizational_units=(OU,), ssm_prefix=PREFIX)
    assert ec2_sharing.org_permissions(cfg) == [{"OrganizationArn": ORG}, {"OrganizationalUnitArn": OU}]
    assert ec2_sharing.pointer_name(cfg, "19", False, "x86_64") == "/rel-eng/fedora/19/x86_64/latest"
    assert ec2_sharing.pointer_name(cfg, "19", True, "i686") == "/rel-eng/fedora/19-weekly/i686/latest"
    assert ec2_config().milestone_deprecate_days == 730 and ec2_config().ssm_prefix == ""
