"""`[ec2]`: AMI publishing (rel_eng.publish): regions, upload mode, volume and sharing rules."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from rel_eng.config.problems import Problems
from rel_eng.config.table import Section, setting

UPLOAD_MODES = ("ebs-direct", "s3-import")
VOLUME_TYPES = ("gp3", "gp2")
BOOT_MODES = ("legacy-bios", "uefi", "uefi-preferred")
IMDS_SUPPORT = ("v2.0", "")  # "" leaves IMDSv1 allowed
SRIOV = ("simple", "")  # "" leaves SriovNetSupport unset
TPM_SUPPORT = ("v2.0", "")  # "" leaves TpmSupport unset
RETRY_MODES = ("standard", "adaptive")
MAX_VOLUME_GIB = 16384  # EBS gp2/gp3 maximum
# The shapes ModifyImageAttribute accepts for LaunchPermission OrganizationArn / OrganizationalUnitArn.
ORG_ARN = re.compile(r"arn:aws[a-z-]*:organizations::[0-9]{12}:organization/o-[a-z0-9]{10,32}")
OU_ARN = re.compile(r"arn:aws[a-z-]*:organizations::[0-9]{12}:ou/o-[a-z0-9]{10,32}/ou-[0-9a-z]{4,32}-[0-9a-z]{8,32}")
# An SSM parameter hierarchy: /a/b/c of letters, digits, `_.-`; names under /aws or /ssm are AWS's.
SSM_PREFIX = re.compile(r"(/[A-Za-z0-9_.-]+){1,10}")
SSM_RESERVED = ("aws", "ssm")


@functools.lru_cache(maxsize=1)
def known_regions() -> frozenset[str]:
    """EC2 regions from botocore's bundled endpoint data (no network)."""
    import boto3  # late: only a config that publishes pays for it

    return frozenset(boto3.session.Session().get_available_regions("ec2"))


def _choice(*allowed: str) -> dict[str, Any]:
    return {"choices": allowed, "noun": "value"}


@dataclass(frozen=True)
class Ec2Config(Section):
    enabled: bool = setting(False, "publish AMIs")
    base_region: str = setting("us-east-1", "where the snapshot is made and the AMI registered")
    regions: tuple[str, ...] = setting((), "copy targets; the base region is always published")
    public_milestones: bool = setting(True, "Alpha/Beta/Final AMIs shared with group \"all\"")
    weekly_public: bool = setting(False, "weekly AMIs shared with group \"all\"")
    deprecate_days: int = setting(28, "weeklies get DeprecateAt = publish time + N days; 0 = never",
                                  low=0, high=3650)
    milestone_deprecate_days: int = setting(
        730, "Alpha/Beta/Final get DeprecateAt = registration + N days; 0 = never", low=0, high=3650)
    share_organizations: tuple[str, ...] = setting(
        (), "organization ARNs given launch permission (beside or instead of public)")
    share_organizational_units: tuple[str, ...] = setting(
        (), "organizational unit ARNs given launch permission (beside or instead of public)")
    ssm_prefix: str = setting(
        "", 'SSM "latest" pointer per region: PREFIX/<stream>/<arch>/latest; "" = none')
    i386: bool = setting(True, "i686 images get i386 AMIs (only t1/m1/c1/c3/t2 run them); off: skipped")
    volume_size_gib: int = setting(0, "0 = the image's size rounded up to GiB", low=0, high=MAX_VOLUME_GIB)
    volume_type: str = setting("gp3", "EBS volume type", **_choice(*VOLUME_TYPES))
    # The AMI's attributes, defaults of every release (a release's ec2_* keys override them).
    ena_support: bool = setting(True, "EnaSupport of the AMI (releases.toml ec2_ena overrides)")
    # Unset by default: "simple" promises the Intel 82599 VF driver (ixgbevf), which no check proves.
    sriov_net_support: str = setting("", '"simple" or "" (SriovNetSupport unset)', **_choice(*SRIOV))
    boot_mode: str = setting("legacy-bios", "BootMode of the AMI (releases.toml ec2_boot_mode "
                             "overrides)", **_choice(*BOOT_MODES))
    imds_support: str = setting("v2.0", '"" leaves IMDSv1 allowed (releases.toml ec2_imds '
                                'overrides)', **_choice(*IMDS_SUPPORT))
    tpm_support: str = setting("", '"v2.0" or "" (TpmSupport unset); needs boot_mode "uefi"',
                               **_choice(*TPM_SUPPORT))
    upload_mode: str = setting("ebs-direct", "EBS direct API or S3 + ImportSnapshot",
                               **_choice(*UPLOAD_MODES))
    s3_bucket: str = setting("", "required for s3-import; must be in the base region")
    s3_prefix: str = setting("rel-eng/", "key prefix of uploads to s3_bucket")
    import_role: str = setting("vmimport", "the IAM role ImportSnapshot uses")
    workers: int = setting(16, "PutSnapshotBlock threads", low=1, high=256)
    block_retries: int = setting(5, "per block, on top of botocore's own retries", low=0, high=20)
    retry_mode: str = setting("standard", "botocore retry mode", **_choice(*RETRY_MODES))
    max_attempts: int = setting(8, "botocore attempts per call, first one included", low=1, high=20)
    wait_timeout_s: int = setting(3600, "per snapshot / import / AMI wait", low=1, high=86400)
    poll_interval_s: int = setting(15, "between waits' polls", low=1, high=3600)
    retention_days: int = setting(28, "`ec2 prune` default", low=1, high=3650)

    @property
    def all_regions(self) -> tuple[str, ...]:
        """The base region first, then the copy targets, without repeats."""
        return tuple(dict.fromkeys((self.base_region, *self.regions)))

    def check(self, problems: Problems, where: str = "ec2.") -> None:
        regions = known_regions()
        hint = "see `aws ec2 describe-regions`"
        if self.base_region not in regions:
            problems.add(f"{where}base_region", f"unknown EC2 region '{self.base_region}' ({hint})")
        for region in self.regions:
            if region not in regions:
                problems.add(f"{where}regions", f"unknown EC2 region '{region}' ({hint})")
        if len(set(self.regions)) != len(self.regions):
            problems.add(f"{where}regions", "lists a region twice")
        for key, arns, shape, example in (
                ("share_organizations", self.share_organizations, ORG_ARN,
                 "arn:aws:organizations::123456789012:organization/o-abcdefghij"),
                ("share_organizational_units", self.share_organizational_units, OU_ARN,
                 "arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-cdefgh34")):
            for arn in arns:
                if not shape.fullmatch(arn):
                    problems.add(f"{where}{key}", f"'{arn}' is not such an ARN (e.g. {example})")
            if len(set(arns)) != len(arns):
                problems.add(f"{where}{key}", "lists an ARN twice")
        if self.ssm_prefix:
            first = self.ssm_prefix.lstrip("/").split("/")[0].lower()
            if not SSM_PREFIX.fullmatch(self.ssm_prefix):
                problems.add(f"{where}ssm_prefix", f"'{self.ssm_prefix}' is not a parameter path "
                             "(e.g. \"/rel-eng/fedora\": /-separated letters, digits, _ . -)")
            elif first.startswith(SSM_RESERVED):
                problems.add(f"{where}ssm_prefix", f"'{self.ssm_prefix}': names beginning with "
                             "aws or ssm belong to AWS (choose another first level)")
        if self.upload_mode == "s3-import" and not self.s3_bucket:
            problems.add(f"{where}s3_bucket", "is required when upload_mode is 's3-import'")

