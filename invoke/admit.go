package invoke

import "github.com/gustfaas/gust"

// Admit returns the EINVALID every call of v gets on this node, the one
// /fn answers with, when v can never run here (an instance needs more
// memory than the node's whole budget); nil otherwise. Async accepts call
// it to refuse an event before storing it rather than dead-letter it.
func (iv *Invoker) Admit(v *gust.Version) error { return iv.cfg.Budget.Admit(v) }
