#!/usr/bin/env python3
"""Checks in seconds what a deploy needs from AWS, before the 10-18 minute release build starts.

`make deploy` and `make deploy-fn` run it first. It resolves the region the deploy goes to the way
`sam deploy` does: the region infra/samconfig.toml saved (the first `sam deploy --guided` writes
it) wins, then AWS_REGION, AWS_DEFAULT_REGION and the profile's configuration. It calls
sts:GetCallerIdentity with the credentials the deploy will use (samconfig's profile, else the
default chain: AWS_ACCESS_KEY_ID..., AWS_PROFILE, the default profile) and prints the account, the
caller and the region. With --function NAME it also checks that the function is deployed there
(cargo lambda deploy would create a new, unrelated one otherwise); --optional-function NAME only
reports whether it is. With --check-concurrency (a whole-stack deploy) it warns when the
account's Lambda concurrency is too small for the PagerDuty webhook function's reservation.

It exits 1, saying what to do, when there are no credentials, they have expired or are refused,
no region is set, or a --function is missing. The report goes to stderr; for the Makefile,
--print-aws-options prints the `--region R [--profile P]` options that make sam and cargo lambda
use the same region and profile, and --print-functions the functions found, one per line.

Usage: .venv/bin/python tools/preflight.py [--function NAME] [--optional-function NAME]...
                                            [--check-concurrency] [--quiet]
                                            [--print-aws-options | --print-functions]
"""

import argparse
import os
import sys
import tomllib
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    InvalidRegionError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    SSOError,
    TokenRetrievalError,
)
from botocore.utils import validate_region_name

SAMCONFIG = Path(__file__).resolve().parent.parent / "infra" / "samconfig.toml"
SAMCONFIG_NAME = "infra/samconfig.toml"
EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}
REFUSED = {"InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException", "AccessDenied"}
CREDENTIALS_HELP = (
    "Give the deploy credentials, one of: `aws sso login --profile NAME` and `export AWS_PROFILE=NAME`;"
    " `aws configure`; or export AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN)."
)


class Refused(Exception):
    """A reason the deploy cannot go ahead, worded for the operator."""


def samconfig_defaults() -> dict:
    """The options `sam deploy` takes from infra/samconfig.toml: its deploy section over its global one."""
    if not SAMCONFIG.exists():
        return {}
    try:
        config = tomllib.loads(SAMCONFIG.read_text()).get("default", {})
    except tomllib.TOMLDecodeError as invalid:
        raise Refused(f"{SAMCONFIG_NAME} is not valid TOML: {invalid}") from invalid
    return {**config.get("global", {}).get("parameters", {}), **config.get("deploy", {}).get("parameters", {})}


def resolve_region(saved: dict, session: boto3.session.Session) -> tuple[str, str]:
    """The region and where it came from, in the order sam deploy follows once the Makefile passes it on."""
    candidates = [
        (saved.get("region"), SAMCONFIG_NAME),
        (os.environ.get("AWS_REGION"), "AWS_REGION"),
        (os.environ.get("AWS_DEFAULT_REGION"), "AWS_DEFAULT_REGION"),
        (session.region_name, f"profile {session.profile_name}'s configuration"),
    ]
    for region, source in candidates:
        if region:
            try:
                validate_region_name(region)
            except InvalidRegionError as invalid:
                raise Refused(f"the region {region!r} from {source} is not a region name ({invalid})") from invalid
            return region, source
    raise Refused(
        "no AWS region is set. Choose where the stack lives: `export AWS_REGION=eu-west-1`, or"
        " `aws configure set region eu-west-1` for your profile (the first `sam deploy --guided` then saves it"
        f" in {SAMCONFIG_NAME})."
    )


def caller_identity(session: boto3.session.Session, region: str, config: Config) -> dict:
    try:
        return session.client("sts", region_name=region, config=config).get_caller_identity()
    except (NoCredentialsError, PartialCredentialsError, ProfileNotFound) as missing:
        raise Refused(f"no usable AWS credentials ({missing}). {CREDENTIALS_HELP}") from missing
    except (TokenRetrievalError, SSOError) as expired:
        raise Refused(f"the SSO session has expired or is missing ({expired}). Run `aws sso login`"
                      " for this profile.") from expired
    except CredentialRetrievalError as failed:
        raise Refused(f"the profile's credential source failed ({failed}). {CREDENTIALS_HELP}") from failed
    except ClientError as refused:
        code = refused.response.get("Error", {}).get("Code", "")
        if code in EXPIRED:
            raise Refused(f"the AWS credentials have expired ({code}). Renew them: `aws sso login`, or a new"
                          " session token. A release build takes 10-18 minutes: start it with fresh ones.") from refused
        if code in REFUSED:
            raise Refused(f"AWS refuses these credentials ({code}: {refused}). {CREDENTIALS_HELP}") from refused
        raise Refused(f"sts:GetCallerIdentity failed: {refused}") from refused
    except BotoCoreError as failed:
        raise Refused(f"cannot reach AWS STS in {region}: {failed}. Check the network and the region.") from failed


def deployed(session: boto3.session.Session, region: str, config: Config, names: list[str]) -> dict[str, bool]:
    client = session.client("lambda", region_name=region, config=config)
    found = {}
    for name in names:
        try:
            client.get_function(FunctionName=name)
            found[name] = True
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise Refused(f"cannot look up the function {name}: {error}") from error
            found[name] = False
        except BotoCoreError as failed:
            raise Refused(f"cannot reach AWS Lambda in {region}: {failed}") from failed
    return found


def report_concurrency(session: boto3.session.Session, region: str, config: Config, report) -> None:
    """Warns, before the build, when the PagerDuty webhook's reserved concurrency could not be granted."""
    try:
        settings = session.client("lambda", region_name=region, config=config).get_account_settings()
    except (ClientError, BotoCoreError):
        return  # only advice: a deployer without lambda:GetAccountSettings still deploys
    limit = settings["AccountLimit"]["ConcurrentExecutions"]
    if settings["AccountLimit"]["UnreservedConcurrentExecutions"] <= 100:
        report(f"this account's Lambda concurrency limit is {limit} and Lambda keeps 100 unreserved: a PagerDuty"
               " webhook function cannot reserve its WebhookReservedConcurrency here and its deploy would fail;"
               " leave WebhookSecretsParameterName empty, or ask AWS to raise the limit first")


def preflight(arguments: argparse.Namespace) -> list[str]:
    """Checks everything; returns the lines to print on stdout."""
    report = (lambda line: None) if arguments.quiet else (lambda line: print(f"preflight: {line}", file=sys.stderr))
    saved = samconfig_defaults()
    # sam deploy passes samconfig's profile explicitly; otherwise the default chain decides.
    profile = saved.get("profile")
    try:
        session = boto3.session.Session(profile_name=profile)
    except ProfileNotFound as missing:
        name = profile or os.environ.get("AWS_PROFILE")
        raise Refused(f"{missing}: create it with `aws configure --profile {name}` or choose another") from missing
    region, source = resolve_region(saved, session)
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if saved.get("region") and os.environ.get(variable, region) != region:
            report(f"{variable}={os.environ[variable]} is ignored: {SAMCONFIG_NAME} deploys to {region}")
    config = Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2})
    identity = caller_identity(session, region, config)
    report(f"account {identity['Account']} as {identity['Arn']}, region {region} ({source})")

    functions = deployed(session, region, config, arguments.function + arguments.optional_function)
    for name, exists in functions.items():
        if name in arguments.function and not exists:
            raise Refused(f"no function {name} in account {identity['Account']}, {region}: deploy the stack first"
                          " (`make deploy`), or check STACK and the region")
        report(f"function {name} " + ("deployed" if exists else "not deployed here: skipped"))
    if arguments.check_concurrency:
        report_concurrency(session, region, config, report)

    if arguments.print_aws_options:
        return [f"--region {region}" + (f" --profile {profile}" if profile else "")]
    if arguments.print_functions:
        return [name for name, exists in functions.items() if exists]
    return []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--function", action="append", default=[], help="a function that must be deployed")
    parser.add_argument("--optional-function", action="append", default=[], help="a function that may be")
    printed = parser.add_mutually_exclusive_group()
    printed.add_argument("--print-aws-options", action="store_true", help="print --region R [--profile P]")
    printed.add_argument("--print-functions", action="store_true", help="print the functions deployed")
    parser.add_argument("--check-concurrency", action="store_true", help="warn if no concurrency can be reserved")
    parser.add_argument("--quiet", action="store_true", help="no report on stderr")
    arguments = parser.parse_args()
    try:
        for line in preflight(arguments):
            print(line)
    except Refused as reason:
        print(f"preflight: cannot deploy: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
