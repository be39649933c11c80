"""limbo-webhooks: delivers signed status webhooks to the endpoints clients registered."""
