// A Lambda-style Node.js handler (an ES module), unchanged from what runs on
// AWS Lambda behind an API Gateway HTTP API.
export const handler = async (event, context) => {
  if (event.rawPath === "/fail") {
    throw new TypeError("asked to fail");
  }
  const name = event.queryStringParameters?.name ?? "world";
  console.log("greeting", name);
  return {
    statusCode: 200,
    headers: { "Content-Type": "application/json" },
    cookies: ["lang=js"],
    body: JSON.stringify({
      message: `${process.env.GREETING ?? "Hello"}, ${name}!`,
      requestId: context.awsRequestId,
      function: context.functionName,
      memory: context.memoryLimitInMB,
      remainingMs: context.getRemainingTimeInMillis(),
      method: event.requestContext.http.method,
      body: event.body ?? null,
    }),
  };
};
