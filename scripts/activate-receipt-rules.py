"""Makes the stack's SES receipt rule set the active one (CloudFormation cannot) and prints
the DNS records the inbound domain needs. Run by `make deploy` after `sam deploy`.

usage: python scripts/activate-receipt-rules.py STACK REGION

Only one receipt rule set can be active per account and region
(https://docs.aws.amazon.com/ses/latest/dg/receiving-email-receipt-rules-console-walkthrough.html):
activating ours deactivates any other; the previous active set is printed so an operator can
restore it.
"""

import sys

import boto3


def main():
    stack, region = sys.argv[1], sys.argv[2]
    cfn = boto3.client("cloudformation", region_name=region)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])}
    rule_set = outputs.get("ReceiptRuleSetName")
    if not rule_set:
        print("[ses] no InboundDomain on this stack: email intake is off, nothing to activate")
        return
    ses = boto3.client("ses", region_name=region)
    active = ses.describe_active_receipt_rule_set().get("Metadata", {}).get("Name")
    if active == rule_set:
        print(f"[ses] receipt rule set {rule_set} is already active")
    else:
        if active:
            print(f"[ses] replacing the active receipt rule set {active} (restore with: aws ses set-active-receipt-rule-set --rule-set-name {active})")
        ses.set_active_receipt_rule_set(RuleSetName=rule_set)
        print(f"[ses] receipt rule set {rule_set} is now active")
    print("[ses] DNS records for the inbound domain (create them once):")
    print(f"  {outputs.get('InboundMxRecord', '')}")
    for record in outputs.get("InboundDkimRecords", "").split("; "):
        print(f"  {record}")


if __name__ == "__main__":
    main()
