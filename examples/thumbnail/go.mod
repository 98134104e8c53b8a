module github.com/gustfaas/gust/examples/thumbnail

go 1.26.0

require (
	github.com/gustfaas/gust/sdk v0.0.0
	golang.org/x/image v0.48.0
)

replace github.com/gustfaas/gust/sdk => ../../sdk
