package gust

import "strconv"

// SecretRef is one place a spec names a secret.
type SecretRef struct {
	Name string
	// As says how: "env" (listed in Secrets: the function gets its value
	// as an environment variable), "webhook PATH" or "jwt route ID" (a
	// signing key the platform checks requests with; the function never
	// sees it).
	As string
}

// Key reports whether the secret is a signing key rather than a value
// the function is given.
func (r SecretRef) Key() bool { return r.As != "env" }

// SecretRefs lists every secret s names: its Secrets, then its webhook
// triggers' keys, then its JWT routes' keys. Every part of gust that asks
// which secrets a spec needs (deploy permissions, secret removal, checks
// that they exist) asks here, so a new kind of use is added once.
func (s Spec) SecretRefs() []SecretRef {
	var refs []SecretRef
	for _, name := range s.Secrets {
		refs = append(refs, SecretRef{Name: name, As: "env"})
	}
	for _, t := range s.Triggers {
		if t.Webhook != nil && t.Webhook.Secret != "" {
			refs = append(refs, SecretRef{Name: t.Webhook.Secret, As: "webhook " + t.Webhook.Path})
		}
	}
	for _, r := range s.Routes {
		if r.JWT == nil {
			continue
		}
		for _, name := range []string{r.JWT.Secret, r.JWT.JWKS} {
			if name != "" {
				refs = append(refs, SecretRef{Name: name, As: "jwt route " + strconv.Quote(r.ID())})
			}
		}
	}
	return refs
}
