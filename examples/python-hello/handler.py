"""A Lambda-style Python handler, unchanged from what runs on AWS Lambda
behind an API Gateway HTTP API: gust's python3 runtime calls
handler(event, context) with a payload 2.0 event."""
import json
import os


def handler(event, context):
    path = event.get("rawPath", "/")
    if path == "/fail":
        raise ValueError("asked to fail")
    params = event.get("queryStringParameters") or {}
    name = params.get("name", "world")
    print("greeting", name)
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "cookies": ["lang=py"],
        "body": json.dumps({
            "message": "%s, %s!" % (os.environ.get("GREETING", "Hello"), name),
            "requestId": context.aws_request_id,
            "function": context.function_name,
            "memory": context.memory_limit_in_mb,
            "remainingMs": context.get_remaining_time_in_millis(),
            "method": event["requestContext"]["http"]["method"],
            "body": event.get("body"),
        }),
    }
