// Package deploy holds no code: it is the systemd unit (systemd/) and the
// Kubernetes manifests and NATS Helm values (kubernetes/) that run gust in
// production, and a test that keeps them parseable. See the README's
// "Deployment" section for why each replica count is what it is.
//
// Nothing in gust may import it.
package deploy
