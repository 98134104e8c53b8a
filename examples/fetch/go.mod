module github.com/gustfaas/gust/examples/fetch

go 1.26

require github.com/gustfaas/gust/sdk v0.0.0

replace github.com/gustfaas/gust/sdk => ../../sdk
