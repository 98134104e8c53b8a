package routes

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/gustfaas/gust"
)

// schemaURL names a route's schema inside its own compiler.
const schemaURL = "gust:///route-schema.json"

// noLoader refuses every external reference: a schema is whole in its
// manifest, and a deploy must not make the server read its files or the
// network.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("external schema references are not allowed (%s): put every definition in the schema, under $defs", url)
}

// compileSchema compiles a draft 2020-12 schema (the default when it has
// no $schema).
func compileSchema(raw []byte) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("schema is not JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	// "format" is only an annotation in 2020-12 unless asserted; users
	// who write format: date-time expect it checked.
	c.AssertFormat()
	c.UseLoader(noLoader{})
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, err
	}
	return c.Compile(schemaURL)
}

// maxSchemaErrors bounds how many schema errors one answer lists.
const maxSchemaErrors = 10

// validateBody checks body against s, by fast (compileFast of s; nil if
// none) when that can tell. Errors: EINVALID listing where and why the
// body fails, or naming a number out of range (numberInRange), which is
// refused whatever the schema says.
func validateBody(s *jsonschema.Schema, fast *fastSchema, body []byte) error {
	if fast != nil && fastValid(fast, body) {
		return nil
	}
	inst, err := decodeInstance(body)
	if err != nil {
		return gust.Errorf(gust.EINVALID, "request body is not valid JSON: %v", err)
	}
	// Before the library sees a number: it makes an exact fraction of
	// each, at a cost that grows with the exponent.
	if err := checkNumbers(inst); err != nil {
		return err
	}
	err = validateSafely(s, inst)
	if err == nil || err == errUncomparable {
		return err
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return gust.WrapError(gust.EINVALID, err, "request body does not match the route's schema")
	}
	var msgs []string
	collect(ve.BasicOutput(), &msgs)
	if len(msgs) == 0 {
		msgs = append(msgs, strings.ReplaceAll(ve.Error(), "\n", "; "))
	}
	more := ""
	if len(msgs) > maxSchemaErrors {
		more = fmt.Sprintf("; and %d more", len(msgs)-maxSchemaErrors)
		msgs = msgs[:maxSchemaErrors]
	}
	return gust.Errorf(gust.EINVALID, "request body does not match the route's schema: %s%s", strings.Join(msgs, "; "), more)
}

// errUncomparable is what a body gets when the schema library gives up on
// one of its values instead of judging it.
var errUncomparable = gust.Errorf(gust.EINVALID, "request body has a value the route's schema cannot check (such as a number too large to compare with its bounds)")

// validateSafely runs the library's validation, turning a panic into a
// refusal of the body. The library panics on some numbers it cannot
// represent (10e1000001 against a maximum, for one); a body must not be
// able to crash the request, let alone choose what the log says.
func validateSafely(s *jsonschema.Schema, inst any) (err error) {
	defer func() {
		if recover() != nil {
			err = errUncomparable
		}
	}()
	return s.Validate(inst)
}

// collect flattens the leaf errors of a basic output: the ones that say
// what is wrong, not that "some properties failed".
func collect(u *jsonschema.OutputUnit, out *[]string) {
	if u == nil {
		return
	}
	if u.Error != nil && len(u.Errors) == 0 {
		loc := u.InstanceLocation
		if loc == "" {
			loc = "/"
		}
		*out = append(*out, fmt.Sprintf("at %s: %s", loc, u.Error.String()))
	}
	for i := range u.Errors {
		collect(&u.Errors[i], out)
	}
}
