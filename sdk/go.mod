module github.com/gustfaas/gust/sdk

go 1.26
