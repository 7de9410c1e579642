"""Deploys infra/template.yaml into the emulator's CloudFormation, the way `sam deploy` would.

1. Translate SAM -> plain CloudFormation offline (aws-sam-translator).
2. Point every function's code at a placeholder zip in an emulator bucket (the emulator does
   not run our Lambdas; the tests drive the handlers in-process against the stack's resources).
3. create_stack and wait for CREATE_COMPLETE.
4. Print the stack outputs as `export NAME=value` lines for the tests.

usage: python scripts/stack_emulator.py STACK_NAME QUEUE_PREFIX SUBNETS SECURITY_GROUPS
"""

import io
import json
import shlex
import os
import sys
import time
import zipfile

# What `make deploy` acknowledges (the Makefile's CAPABILITIES). The engines do not check
# it; tests/tests/infra.rs derives what the template needs and compares.
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]

import boto3
from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform


class NoManagedPolicies:
    """Every role in the template is explicit: no managed policy is ever looked up."""

    def load(self):
        return {}


def main():
    stack, prefix, subnets, sgs = sys.argv[1:5]
    region = os.environ.get("AWS_REGION", "us-east-1")
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "infra", "template.yaml")) as f:
        sam = yaml_parse(f.read())

    s3 = boto3.client("s3", region_name=region)
    bucket = f"{stack}-artifacts"
    s3.create_bucket(Bucket=bucket)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\necho placeholder\n")
    for name, res in sam["Resources"].items():
        if res["Type"] == "AWS::Serverless::Function":
            key = f"{name}.zip"
            s3.put_object(Bucket=bucket, Key=key, Body=buf.getvalue())
            res["Properties"]["CodeUri"] = f"s3://{bucket}/{key}"

    params = {
        "QueuePrefix": prefix,
        "WorkerImage": "switchyard-worker:emulator",
        "Subnets": subnets,
        "SecurityGroups": sgs,
    }
    cfn_template = transform(sam, params, NoManagedPolicies())
    out_path = os.path.join(root, ".switchyard", f"{stack}.cfn.json")
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w") as f:
        json.dump(cfn_template, f, indent=1)

    cfn = boto3.client("cloudformation", region_name=region)
    cfn.create_stack(
        StackName=stack,
        TemplateBody=json.dumps(cfn_template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        Capabilities=CAPABILITIES,
    )
    status = ""
    for _ in range(600):
        desc = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        status = desc["StackStatus"]
        if not status.endswith("IN_PROGRESS"):
            break
        time.sleep(0.2)
    if status != "CREATE_COMPLETE":
        for e in cfn.describe_stack_events(StackName=stack)["StackEvents"]:
            if "FAILED" in e.get("ResourceStatus", ""):
                print(f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}", file=sys.stderr)
        sys.exit(f"stack {stack}: {status}")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in desc.get("Outputs", [])}
    for k, v in sorted(outputs.items()):
        print(f"export SWITCHYARD_STACK_{k.upper()}={shlex.quote(v)}")


if __name__ == "__main__":
    main()
