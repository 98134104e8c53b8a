package process

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gustfaas/gust"
)

// apiGatewayEvent is an API Gateway HTTP API event, payload format 2.0:
// what a Lambda function behind an HTTP API receives, so that functions
// written for one (aws-lambda-go's events.APIGatewayV2HTTPRequest, a
// Python or Node handler reading event["rawPath"]) run unchanged.
type apiGatewayEvent struct {
	Version               string            `json:"version"`
	RouteKey              string            `json:"routeKey"`
	RawPath               string            `json:"rawPath"`
	RawQueryString        string            `json:"rawQueryString"`
	Cookies               []string          `json:"cookies,omitempty"`
	Headers               map[string]string `json:"headers"`
	QueryStringParameters map[string]string `json:"queryStringParameters,omitempty"`
	RequestContext        requestContext    `json:"requestContext"`
	Body                  string            `json:"body,omitempty"`
	IsBase64Encoded       bool              `json:"isBase64Encoded"`
}

type requestContext struct {
	AccountID    string      `json:"accountId"`
	APIID        string      `json:"apiId"`
	DomainName   string      `json:"domainName"`
	DomainPrefix string      `json:"domainPrefix"`
	HTTP         httpContext `json:"http"`
	RequestID    string      `json:"requestId"`
	RouteKey     string      `json:"routeKey"`
	Stage        string      `json:"stage"`
	Time         string      `json:"time"`
	TimeEpoch    int64       `json:"timeEpoch"`
}

type httpContext struct {
	Method    string `json:"method"`
	Path      string `json:"path"`
	Protocol  string `json:"protocol"`
	SourceIP  string `json:"sourceIp"`
	UserAgent string `json:"userAgent"`
}

// accountID is the account gust's ARNs name: there is no AWS account.
const accountID = "000000000000"

func functionARN(function string) string {
	return "arn:aws:lambda:gust:" + accountID + ":function:" + function
}

// newAPIGatewayEvent turns a request into the event. Header names are
// lowercased and repeated values comma-joined, as API Gateway does; the
// Cookie header moves to cookies; a body that is not UTF-8 travels
// base64-encoded.
func newAPIGatewayEvent(req *gust.Request, now time.Time) ([]byte, error) {
	path := req.Path
	if path == "" {
		path = "/"
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	ev := apiGatewayEvent{
		Version:        "2.0",
		RouteKey:       "$default",
		RawPath:        (&url.URL{Path: path, RawPath: req.RawPath}).EscapedPath(), // escaped, as a function URL's
		RawQueryString: req.Query,
		Headers:        map[string]string{},
		RequestContext: requestContext{
			AccountID: accountID,
			APIID:     "gust",
			HTTP: httpContext{
				Method:   method,
				Path:     path,
				Protocol: "HTTP/1.1",
				SourceIP: "127.0.0.1",
			},
			RequestID: req.ID,
			RouteKey:  "$default",
			Stage:     "$default",
			Time:      now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch: now.UnixMilli(),
		},
	}
	for k, vs := range req.Header {
		lk := strings.ToLower(k)
		if lk == "cookie" {
			for _, v := range vs {
				for _, c := range strings.Split(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						ev.Cookies = append(ev.Cookies, c)
					}
				}
			}
			continue
		}
		if prev, ok := ev.Headers[lk]; ok {
			ev.Headers[lk] = prev + "," + strings.Join(vs, ",")
		} else {
			ev.Headers[lk] = strings.Join(vs, ",")
		}
	}
	host := ev.Headers["host"]
	ev.RequestContext.DomainName = host
	ev.RequestContext.DomainPrefix, _, _ = strings.Cut(host, ".")
	ev.RequestContext.HTTP.UserAgent = ev.Headers["user-agent"]
	if xff := ev.Headers["x-forwarded-for"]; xff != "" {
		first, _, _ := strings.Cut(xff, ",")
		ev.RequestContext.HTTP.SourceIP = strings.TrimSpace(first)
	}
	if req.Query != "" {
		q, err := url.ParseQuery(req.Query)
		if err == nil && len(q) > 0 {
			ev.QueryStringParameters = make(map[string]string, len(q))
			keys := make([]string, 0, len(q))
			for k := range q {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				ev.QueryStringParameters[k] = strings.Join(q[k], ",")
			}
		}
	}
	if len(req.Body) > 0 {
		if utf8.Valid(req.Body) {
			ev.Body = string(req.Body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(req.Body)
			ev.IsBase64Encoded = true
		}
	}
	return json.Marshal(ev)
}

// proxyResponse is what a function behind an HTTP API answers.
type proxyResponse struct {
	StatusCode        *int                `json:"statusCode"`
	Headers           map[string]string   `json:"headers"`
	MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
	Cookies           []string            `json:"cookies"`
	Body              *string             `json:"body"`
	IsBase64Encoded   bool                `json:"isBase64Encoded"`
}

// mapResponse turns what the function returned into the HTTP response,
// with API Gateway's rule for payload 2.0: an object with a statusCode is
// a proxy response; any other JSON value is itself the body of a 200
// application/json response.
func mapResponse(out []byte) (*gust.Response, error) {
	trimmed := strings.TrimSpace(string(out))
	if !json.Valid([]byte(trimmed)) {
		// Valid says only no; decoding says where and why (a Python
		// handler's float('nan') is written as NaN, which JSON has not).
		var v any
		detail := "empty response"
		if err := json.Unmarshal([]byte(trimmed), &v); err != nil {
			detail = err.Error()
		}
		return nil, gust.Errorf(gust.EFUNCTION, "function returned a response that is not JSON: %s", detail)
	}
	if strings.HasPrefix(trimmed, "{") {
		var probe map[string]json.RawMessage
		if err := json.Unmarshal([]byte(trimmed), &probe); err == nil {
			if _, ok := probe["statusCode"]; ok {
				var pr proxyResponse
				if err := json.Unmarshal([]byte(trimmed), &pr); err != nil {
					return nil, gust.WrapError(gust.EFUNCTION, err, "function returned a malformed proxy response: %v", err)
				}
				return pr.toResponse()
			}
		}
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	return &gust.Response{Status: http.StatusOK, Header: h, Body: []byte(trimmed)}, nil
}

func (pr *proxyResponse) toResponse() (*gust.Response, error) {
	// A Python handler returning {"statusCode": None} gets here with nil.
	if pr.StatusCode == nil {
		return nil, gust.Errorf(gust.EFUNCTION, "function returned a proxy response whose statusCode is null")
	}
	status := *pr.StatusCode
	if status < 100 || status > 999 {
		return nil, gust.Errorf(gust.EFUNCTION, "function returned an invalid statusCode %d", status)
	}
	h := http.Header{}
	for k, vs := range pr.MultiValueHeaders {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	for k, v := range pr.Headers {
		h.Set(k, v)
	}
	for _, c := range pr.Cookies {
		h.Add("Set-Cookie", c)
	}
	// Framing is the server's to set, as API Gateway does: a function's
	// Content-Length that disagrees with its body would cut it short.
	for _, k := range hopHeaders {
		h.Del(k)
	}
	h.Del("Content-Length")
	var body []byte
	if pr.Body != nil {
		if pr.IsBase64Encoded {
			b, err := base64.StdEncoding.DecodeString(*pr.Body)
			if err != nil {
				return nil, gust.WrapError(gust.EFUNCTION, err, "function returned isBase64Encoded with a body that is not base64: %v", err)
			}
			body = b
		} else {
			body = []byte(*pr.Body)
		}
	}
	return &gust.Response{Status: status, Header: h, Body: body}, nil
}

// lambdaError is Lambda's shape of a function error, as gust logs it.
type lambdaError struct {
	ErrorMessage string   `json:"errorMessage"`
	ErrorType    string   `json:"errorType"`
	StackTrace   []string `json:"stackTrace,omitempty"`
	// rawStack is stackTrace as the runtime posted it (strings, or
	// aws-lambda-go's frame objects), or nil.
	rawStack json.RawMessage
}

// FunctionError is an error a function reported through the Lambda
// Runtime API (its handler raised, or its initialization failed), in
// Lambda's shape. Invoke and NewInstance return it inside a *gust.Error
// of code EFUNCTION whose message says the same in one line; after a
// handler error it also wraps gust.ErrInstanceHealthy. ErrorFields gives
// the fields a Lambda caller expects in the error's JSON body, to be
// written beside gust's "error" and "code" (see httperr).
type FunctionError struct {
	ErrorMessage string
	ErrorType    string
	// StackTrace is the stackTrace the runtime posted, as it posted it,
	// or nil.
	StackTrace json.RawMessage
	healthy    bool
}

func newFunctionError(le lambdaError, healthy bool) *FunctionError {
	return &FunctionError{ErrorMessage: le.ErrorMessage, ErrorType: le.ErrorType, StackTrace: le.rawStack, healthy: healthy}
}

func (e *FunctionError) Error() string {
	if e.healthy {
		return "reported through the Runtime API; " + gust.ErrInstanceHealthy.Error()
	}
	return "reported through the Runtime API"
}

// Unwrap returns gust.ErrInstanceHealthy after a handler error: the
// runtime caught it and lives on.
func (e *FunctionError) Unwrap() error {
	if e.healthy {
		return gust.ErrInstanceHealthy
	}
	return nil
}

// ErrorFields returns errorMessage, errorType and, when the runtime gave
// one, stackTrace: AWS Lambda's body for a function error.
func (e *FunctionError) ErrorFields() map[string]any {
	f := map[string]any{"errorMessage": e.ErrorMessage, "errorType": e.ErrorType}
	if len(e.StackTrace) > 0 {
		f["stackTrace"] = e.StackTrace
	}
	return f
}

// parseLambdaError reads an error the function reported. Runtimes differ
// on stackTrace (strings, or aws-lambda-go's frame objects), so it is kept
// loosely.
func parseLambdaError(body []byte, headerType string) lambdaError {
	var raw struct {
		ErrorMessage string          `json:"errorMessage"`
		ErrorType    string          `json:"errorType"`
		StackTrace   json.RawMessage `json:"stackTrace"`
	}
	le := lambdaError{}
	if err := json.Unmarshal(body, &raw); err != nil {
		le.ErrorMessage = strings.TrimSpace(string(body))
	} else {
		le.ErrorMessage, le.ErrorType = raw.ErrorMessage, raw.ErrorType
		if len(raw.StackTrace) > 0 && string(raw.StackTrace) != "null" {
			le.rawStack = raw.StackTrace
		}
		var lines []string
		if json.Unmarshal(raw.StackTrace, &lines) == nil {
			le.StackTrace = lines
		} else if len(raw.StackTrace) > 0 && string(raw.StackTrace) != "null" {
			var frames []map[string]any
			if json.Unmarshal(raw.StackTrace, &frames) == nil {
				for _, f := range frames {
					le.StackTrace = append(le.StackTrace, fmt.Sprintf("%v (%v:%v)", f["label"], f["path"], f["line"]))
				}
			}
		}
	}
	if le.ErrorType == "" {
		le.ErrorType = headerType
	}
	if le.ErrorType == "" {
		le.ErrorType = "Error"
	}
	return le
}
