// hello-c is a gust function in C: a WASI command speaking CGI (WAGI).
// gust runs it once per request with the request in its environment
// (REQUEST_METHOD, PATH_INFO, QUERY_STRING, HTTP_* headers, ...) and the
// body on stdin; what it prints is the response: headers, a blank line,
// the body.
//
// It echoes the method, path and query, counts the body's bytes, and
// answers with the status given as ?status=NNN (default 200).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *env(const char *name) {
	const char *v = getenv(name);
	return v ? v : "";
}

// query_param copies the value of key in the raw query string q into out
// (no percent-decoding: enough for a status code).
static int query_param(const char *q, const char *key, char *out, size_t outsz) {
	size_t klen = strlen(key);
	while (*q) {
		const char *end = strchr(q, '&');
		size_t len = end ? (size_t)(end - q) : strlen(q);
		if (len > klen && strncmp(q, key, klen) == 0 && q[klen] == '=') {
			size_t vlen = len - klen - 1;
			if (vlen >= outsz) vlen = outsz - 1;
			memcpy(out, q + klen + 1, vlen);
			out[vlen] = 0;
			return 1;
		}
		if (!end) break;
		q = end + 1;
	}
	return 0;
}

static const char *reason(int code) {
	switch (code) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 500: return "Internal Server Error";
	default: return "Status";
	}
}

int main(void) {
	const char *q = env("QUERY_STRING");
	char buf[16];
	int status = 200;
	if (query_param(q, "status", buf, sizeof buf)) {
		status = atoi(buf);
		if (status < 100 || status > 999) {
			fprintf(stderr, "hello-c: bad status %s\n", buf);
			return 2;
		}
	}
	if (query_param(q, "exit", buf, sizeof buf)) {
		fprintf(stderr, "hello-c: exiting with code %s as asked\n", buf);
		return atoi(buf);
	}

	// Count the body from stdin rather than trusting CONTENT_LENGTH.
	long n = 0;
	char chunk[4096];
	size_t got;
	while ((got = fread(chunk, 1, sizeof chunk, stdin)) > 0) n += (long)got;

	printf("Status: %d %s\r\n", status, reason(status));
	printf("Content-Type: text/plain\r\n");
	printf("X-Hello-C: yes\r\n");
	printf("\r\n");
	printf("method=%s\n", env("REQUEST_METHOD"));
	printf("path=%s\n", env("PATH_INFO"));
	printf("query=%s\n", q);
	printf("body=%ld\n", n);
	printf("user-agent=%s\n", env("HTTP_USER_AGENT"));
	printf("invocation=%s\n", env("X_GUST_INVOCATION_ID"));
	fprintf(stderr, "hello-c served %s %s\n", env("REQUEST_METHOD"), env("PATH_INFO"));
	return 0;
}
