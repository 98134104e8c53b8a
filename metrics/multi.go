package metrics

import "github.com/gustfaas/gust"

// Multi returns a Recorder that hands every record to each of recorders in
// order, skipping nil ones. It is the one fan-out in gust: the invoker gets
// a single Recorder (the meter and metrics, say). A typed nil pointer in an
// interface is not nil and is not skipped.
func Multi(recorders ...gust.Recorder) gust.Recorder {
	var rs multi
	for _, r := range recorders {
		if r != nil {
			rs = append(rs, r)
		}
	}
	if len(rs) == 1 {
		return rs[0]
	}
	return rs
}

type multi []gust.Recorder

func (rs multi) Record(inv *gust.Invocation) {
	for _, r := range rs {
		r.Record(inv)
	}
}
