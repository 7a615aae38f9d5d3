"""Deploy the instant pipeline to AWS: CloudFormation template, deploy, rollback."""
