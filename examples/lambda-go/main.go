// Command bootstrap is a function written for AWS Lambda with aws-lambda-go,
// unchanged: gust's process runtime serves it the Lambda Runtime API. It
// answers an API Gateway HTTP API (payload 2.0) event.
//
// Build it as Lambda's provided runtimes want, an executable named bootstrap:
//
//	GOOS=linux CGO_ENABLED=0 go build -o bootstrap .
//
// and deploy the directory (gust zips it):
//
//	gust deploy lambda-go --runtime process --protocol lambda --code examples/lambda-go
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

func handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	lc, _ := lambdacontext.FromContext(ctx)
	switch req.RawPath {
	case "/error":
		return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("asked to fail")
	case "/binary":
		// Bytes that are not UTF-8 travel base64-encoded.
		return events.APIGatewayV2HTTPResponse{
			StatusCode:      201,
			Headers:         map[string]string{"Content-Type": "application/octet-stream"},
			Body:            base64.StdEncoding.EncodeToString([]byte{0xff, 0x00, 0xfe}),
			IsBase64Encoded: true,
		}, nil
	}
	body := req.Body
	if req.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("decode body: %w", err)
		}
		body = fmt.Sprintf("%d bytes", len(b))
	}
	echo, err := json.Marshal(map[string]any{
		"method":    req.RequestContext.HTTP.Method,
		"path":      req.RawPath,
		"query":     req.RawQueryString,
		"params":    req.QueryStringParameters,
		"cookies":   req.Cookies,
		"header":    req.Headers["x-test"],
		"body":      body,
		"requestId": lc.AwsRequestID,
		"arn":       lc.InvokedFunctionArn,
		"function":  lambdacontext.FunctionName,
		"memory":    lambdacontext.MemoryLimitInMB,
		"greeting":  os.Getenv("GREETING"),
	})
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	return events.APIGatewayV2HTTPResponse{
		StatusCode: 200,
		Headers:    map[string]string{"Content-Type": "application/json", "X-Handled-By": "lambda-go"},
		Cookies:    []string{"seen=yes; Path=/", "flavor=oat"},
		Body:       string(echo),
	}, nil
}

func main() {
	lambda.Start(handle)
}
