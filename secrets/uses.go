package secrets

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/gustfaas/gust"
)

// Use is a version that needs a secret and that an alias points to (live
// or another), so that calls reach it: with the secret gone it answers
// 503 on every call. A version no alias points to is called only by its
// number and does not count: otherwise every old version would keep its
// secrets forever.
type Use struct {
	Function string `json:"function"`
	Version  int    `json:"version"`
	// Aliases point to the version: "live" first, then the others by name.
	Aliases []string `json:"aliases"`
	// As says what needs the secret: "env" (spec secrets), "webhook PATH",
	// "jwt route ROUTE".
	As []string `json:"as"`
}

func (u Use) String() string {
	return fmt.Sprintf("%s version %d (%s; %s)", u.Function, u.Version,
		aliasList(u.Aliases), strings.Join(u.As, ", "))
}

func aliasList(aliases []string) string {
	if len(aliases) == 1 && aliases[0] == gust.AliasLive {
		return "live"
	}
	return "alias " + strings.Join(aliases, ", ")
}

// Uses lists the versions that need secret name and that an alias points
// to, sorted by function and version. It reads the registry's functions
// and the versions their aliases target.
func Uses(ctx context.Context, reg gust.Registry, name string) ([]Use, error) {
	fns, err := reg.Functions(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing functions: %w", err)
	}
	var out []Use
	for _, fn := range fns {
		targeted := map[int][]string{}
		if _, ok := fn.Aliases[gust.AliasLive]; !ok && fn.Live > 0 {
			targeted[fn.Live] = []string{gust.AliasLive}
		}
		for _, a := range fn.Aliases {
			for _, t := range a.Targets {
				targeted[t.Version] = append(targeted[t.Version], a.Name)
			}
		}
		versions := make([]int, 0, len(targeted))
		for v := range targeted {
			versions = append(versions, v)
		}
		slices.Sort(versions)
		for _, number := range versions {
			v, err := reg.Version(ctx, fn.Name, number)
			if gust.ErrorCode(err) == gust.ENOTFOUND {
				continue // removed meanwhile
			}
			if err != nil {
				return nil, fmt.Errorf("reading %s version %d: %w", fn.Name, number, err)
			}
			as := needs(v.Spec, name)
			if len(as) == 0 {
				continue
			}
			aliases := targeted[number]
			slices.SortFunc(aliases, func(a, b string) int {
				switch {
				case a == b:
					return 0
				case a == gust.AliasLive:
					return -1
				case b == gust.AliasLive:
					return 1
				}
				return strings.Compare(a, b)
			})
			out = append(out, Use{Function: fn.Name, Version: number, Aliases: aliases, As: as})
		}
	}
	slices.SortFunc(out, func(a, b Use) int {
		if c := strings.Compare(a.Function, b.Function); c != 0 {
			return c
		}
		return a.Version - b.Version
	})
	return out, nil
}

// needs says what in spec names secret name: its environment, a webhook
// trigger's signing key, a JWT route's key or key set.
func needs(spec gust.Spec, name string) []string {
	var as []string
	for _, r := range spec.SecretRefs() {
		if r.Name == name {
			as = append(as, r.As)
		}
	}
	return as
}

// usesError is the 409 of a secret still in use: its message names the
// versions, and its JSON body lists them as "usedBy".
type usesError struct {
	err  *gust.Error
	uses []Use
}

func (e *usesError) Error() string { return e.err.Error() }

func (e *usesError) Unwrap() error { return e.err }

func (e *usesError) ErrorFields() map[string]any { return map[string]any{"usedBy": e.uses} }

func describeUses(uses []Use) string {
	parts := make([]string, len(uses))
	for i, u := range uses {
		parts[i] = u.String()
	}
	return strings.Join(parts, "; ")
}
