package async

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/gustfaas/gust"
)

// The webhook signature parser reads headers anyone can send: it must
// refuse what is not signed with the key, accept what is, and never panic.
func FuzzVerifySignature(f *testing.F) {
	f.Add("github", "sha256=00", []byte("{}"))
	f.Add("stripe", "t=1800000000,v1=00,v1=zz", []byte("{}"))
	f.Add("stripe", ",,=,t=,v1=", []byte(""))
	f.Add("hmac-sha256", " 00 ", []byte("x"))
	f.Add("nope", "", []byte(nil))
	key := []byte("webhook-key")
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, scheme, sig string, body []byte) {
		hook := gust.WebhookTrigger{Path: "/hooks/x", Secret: "K", Scheme: scheme}
		h := http.Header{}
		for _, k := range []string{HeaderGitHubSignature, HeaderSignature, HeaderStripeSignature} {
			h.Set(k, sig)
		}
		if _, err := verifySignature(hook, h, body, key, now); err == nil {
			t.Fatalf("accepted a guessed signature %q for %s", sig, scheme)
		} else if gust.ErrorCode(err) != gust.EUNAUTHORIZED {
			t.Fatalf("error %v is not unauthorized", err)
		}
		// A real signature of the same body passes.
		mac := func(msg []byte) string {
			m := hmac.New(sha256.New, key)
			m.Write(msg)
			return hex.EncodeToString(m.Sum(nil))
		}
		good := http.Header{}
		switch scheme {
		case gust.WebhookGitHub:
			good.Set(HeaderGitHubSignature, "sha256="+mac(body))
		case gust.WebhookHMACSHA256:
			good.Set(HeaderSignature, mac(body))
		case gust.WebhookStripe:
			ts := strconv.FormatInt(now.Unix(), 10)
			good.Set(HeaderStripeSignature, "t="+ts+",v1="+mac(append([]byte(ts+"."), body...)))
		default:
			return
		}
		if _, err := verifySignature(hook, good, body, key, now); err != nil {
			t.Fatalf("refused a real %s signature: %v", scheme, err)
		}
	})
}
