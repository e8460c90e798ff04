"""The clients: the only code of the product that speaks to the services (boto3, HTTP)."""
