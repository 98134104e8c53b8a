package routes

import (
	"bytes"
	"encoding/json"
	"math/big"
	"reflect"
	"regexp"
	"regexp/syntax"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// fastSchema is a compiled schema as a yes-or-unsure check that walks a
// body's bytes: it builds no tree and, for the bodies a route usually
// sees, allocates next to nothing, where the library's validator makes a
// validator, a scope and an evaluation record for every value and a
// big.Rat for every number.
//
// It only ever answers "valid" when the library would: on anything it
// does not know for sure (a keyword it does not implement, a value that
// fails, a number it cannot compare exactly) it answers "unsure", and the
// body goes through the library, which decides and words the errors. So
// a route's verdicts and messages are the library's, whichever way a
// body goes. FuzzFastSchema holds the two to that.
type fastSchema struct {
	// opaque: the schema uses a keyword not checked here; every value
	// it meets is unsure.
	opaque bool
	// anything: the schema asserts nothing (true, or only annotations);
	// only the value's syntax is checked.
	anything bool

	types uint8 // tNull, tBoolean, ... bits; 0: any type

	// enum (or const, which is an enum of one): allowed values, all of
	// them strings, booleans or null; nil: no enum.
	enum []any

	format  *jsonschema.Format
	pattern jsonschema.Regexp
	// classRun stands in for pattern when that is a whole string of one
	// character class, the common shape (^[a-z0-9-]{1,32}$).
	classRun *classRun
	minLen   int // -1: none
	maxLen   int // -1: none

	minimum, maximum, exclMinimum, exclMaximum *bound
	multipleOf                                 *big.Rat

	// props has every name under properties or required.
	props     map[string]fastProp
	nRequired int
	addl      addlKind
	addlSch   *fastSchema

	minItems, maxItems int // -1: none
	prefix             []*fastSchema
	items              *fastSchema // nil: any item
}

type fastProp struct {
	sch *fastSchema // nil: not under properties
	req int         // bit in the required set; -1: not required
}

type addlKind uint8

const (
	addlAny addlKind = iota
	addlDeny
	addlSchema
)

const (
	tNull uint8 = 1 << iota
	tBoolean
	tNumber
	tInteger
	tString
	tArray
	tObject
)

var typeBits = map[string]uint8{
	"null": tNull, "boolean": tBoolean, "number": tNumber, "integer": tInteger,
	"string": tString, "array": tArray, "object": tObject,
}

// bound is a minimum or maximum, with its float64 when that is exact:
// then rounding a number to float64 (which is monotonic) tells on which
// side of the bound it lies unless it rounds to the bound itself.
type bound struct {
	r     *big.Rat
	f     float64
	exact bool
}

func newBound(r *big.Rat) *bound {
	if r == nil {
		return nil
	}
	f, exact := r.Float64()
	return &bound{r: r, f: f, exact: exact}
}

// cmp compares the JSON number lit with b as the library does (big.Rat
// of the literal); ok is false if the literal is not a big.Rat, where the
// library has its own ways.
func (b *bound) cmp(lit string) (c int, ok bool) {
	if b.exact {
		if x, err := strconv.ParseFloat(lit, 64); err == nil {
			if x < b.f {
				return -1, true
			}
			if x > b.f {
				return 1, true
			}
		}
	}
	r, ok := new(big.Rat).SetString(lit)
	if !ok {
		return 0, false
	}
	return r.Cmp(b.r), true
}

// fastFields are the Schema fields fastSchema checks or that assert
// nothing about a value on their own. A schema with any other field set
// is opaque, so a keyword added to the library later cannot be skipped
// by mistake.
var fastFields = map[string]bool{
	"DraftVersion": true, "Location": true, "ID": true, "Anchor": true,
	"RecursiveAnchor": true, "DynamicAnchor": true, "Bool": true,
	"Types": true, "Enum": true, "Const": true, "Format": true,
	"Required": true, "Properties": true, "AdditionalProperties": true,
	"MinItems": true, "MaxItems": true, "Items": true, "PrefixItems": true, "Items2020": true,
	"MinLength": true, "MaxLength": true, "Pattern": true,
	"Maximum": true, "Minimum": true, "ExclusiveMaximum": true, "ExclusiveMinimum": true, "MultipleOf": true,
	"Title": true, "Description": true, "Default": true, "Comment": true,
	"ReadOnly": true, "WriteOnly": true, "Examples": true, "Deprecated": true,
}

// compileFast builds the fast check of s; nil if s itself is opaque, as
// then every body would be unsure.
func compileFast(s *jsonschema.Schema) *fastSchema {
	f := buildFast(s, map[*jsonschema.Schema]*fastSchema{})
	if f.opaque {
		return nil
	}
	return f
}

var opaqueSchema = &fastSchema{opaque: true}

func buildFast(s *jsonschema.Schema, memo map[*jsonschema.Schema]*fastSchema) *fastSchema {
	if f, ok := memo[s]; ok {
		return f
	}
	f := buildFastOne(s, memo)
	memo[s] = f
	return f
}

func buildFastOne(s *jsonschema.Schema, memo map[*jsonschema.Schema]*fastSchema) *fastSchema {
	if s == nil {
		return opaqueSchema
	}
	if s.Bool != nil {
		if *s.Bool {
			return &fastSchema{anything: true}
		}
		return opaqueSchema
	}
	rv := reflect.ValueOf(s).Elem()
	rt := rv.Type()
	for i := range rt.NumField() {
		fd := rt.Field(i)
		if fd.IsExported() && !fastFields[fd.Name] && !rv.Field(i).IsZero() {
			return opaqueSchema
		}
	}
	f := &fastSchema{minLen: -1, maxLen: -1, minItems: -1, maxItems: -1}
	if s.Types != nil {
		for _, name := range s.Types.ToStrings() {
			bit, ok := typeBits[name]
			if !ok {
				return opaqueSchema
			}
			f.types |= bit
		}
	}
	if s.Enum != nil {
		if !simpleValues(s.Enum.Values) {
			return opaqueSchema
		}
		f.enum = append([]any{}, s.Enum.Values...)
	}
	if s.Const != nil {
		if !simpleValues([]any{*s.Const}) {
			return opaqueSchema
		}
		if f.enum != nil {
			// Both: a value must equal the const and be in the enum.
			if !containsSimple(f.enum, *s.Const) {
				return opaqueSchema
			}
		}
		f.enum = []any{*s.Const}
	}
	f.format, f.pattern = s.Format, s.Pattern
	if re, ok := s.Pattern.(*regexp.Regexp); ok {
		f.classRun = compileClassRun(re.String())
	}
	if s.MinLength != nil {
		f.minLen = *s.MinLength
	}
	if s.MaxLength != nil {
		f.maxLen = *s.MaxLength
	}
	f.minimum, f.maximum = newBound(s.Minimum), newBound(s.Maximum)
	f.exclMinimum, f.exclMaximum = newBound(s.ExclusiveMinimum), newBound(s.ExclusiveMaximum)
	f.multipleOf = s.MultipleOf
	if f.multipleOf != nil && f.multipleOf.Sign() <= 0 {
		return opaqueSchema
	}

	if len(s.Required) > 63 {
		return opaqueSchema
	}
	if len(s.Properties) > 0 || len(s.Required) > 0 {
		f.props = make(map[string]fastProp, len(s.Properties)+len(s.Required))
	}
	for name, sub := range s.Properties {
		f.props[name] = fastProp{sch: buildFast(sub, memo), req: -1}
	}
	for _, name := range s.Required {
		p, ok := f.props[name]
		if !ok {
			p.req = -1
		}
		if p.req >= 0 {
			continue // named twice
		}
		p.req = f.nRequired
		f.nRequired++
		f.props[name] = p
	}
	switch a := s.AdditionalProperties.(type) {
	case nil:
	case bool:
		if !a {
			f.addl = addlDeny
		}
	case *jsonschema.Schema:
		f.addl, f.addlSch = addlSchema, buildFast(a, memo)
	default:
		return opaqueSchema
	}

	if s.MinItems != nil {
		f.minItems = *s.MinItems
	}
	if s.MaxItems != nil {
		f.maxItems = *s.MaxItems
	}
	switch it := s.Items.(type) {
	case nil:
	case *jsonschema.Schema:
		f.items = buildFast(it, memo)
	default:
		return opaqueSchema
	}
	if s.Items2020 != nil {
		if f.items != nil {
			return opaqueSchema
		}
		f.items = buildFast(s.Items2020, memo)
	}
	for _, p := range s.PrefixItems {
		f.prefix = append(f.prefix, buildFast(p, memo))
	}

	f.anything = f.types == 0 && f.enum == nil && f.format == nil && f.pattern == nil &&
		f.minLen < 0 && f.maxLen < 0 && f.minimum == nil && f.maximum == nil &&
		f.exclMinimum == nil && f.exclMaximum == nil && f.multipleOf == nil &&
		f.props == nil && f.addl == addlAny && f.minItems < 0 && f.maxItems < 0 &&
		f.prefix == nil && f.items == nil
	return f
}

// simpleValues reports whether every value is a string, a boolean or
// null: the values whose equality is plain ==.
func simpleValues(vs []any) bool {
	for _, v := range vs {
		switch v.(type) {
		case string, bool, nil:
		default:
			return false
		}
	}
	return true
}

func containsSimple(vs []any, v any) bool {
	for _, e := range vs {
		if e == v {
			return true
		}
	}
	return false
}

// fastValid reports whether body is certainly valid JSON and valid
// against f; false means unsure, not invalid. It checks the syntax as it
// goes, as strictly as json.Valid (the library's decoder runs the same
// scanner) or more, so a body needs no separate pass for that.
func fastValid(f *fastSchema, body []byte) bool {
	w := fastWalker{b: body, s: string(body)}
	if !w.value(f, 0) {
		return false
	}
	w.space()
	return w.i == len(w.b)
}

// fastWalker reads a body for fastValid. s is b as a string, which
// plain strings and numbers are sliced from rather than copied.
type fastWalker struct {
	b []byte
	s string
	i int
}

// maxFastDepth bounds nesting (json.Valid allows 10000; deeper than this
// is unsure) and so the walk's recursion.
const maxFastDepth = 512

func (w *fastWalker) space() {
	for w.i < len(w.b) {
		switch w.b[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

// value reads the value at w.i, checking its syntax and, unless f is
// nil, that f holds for it.
func (w *fastWalker) value(f *fastSchema, depth int) bool {
	if f != nil {
		if f.opaque {
			return false
		}
		if f.anything {
			f = nil
		}
	}
	w.space()
	if w.i >= len(w.b) {
		return false
	}
	switch c := w.b[w.i]; {
	case c == '{':
		if depth >= maxFastDepth || f != nil && !(f.allows(tObject) && f.enum == nil && f.format == nil) {
			return false
		}
		return w.object(f, depth+1)
	case c == '[':
		if depth >= maxFastDepth || f != nil && !(f.allows(tArray) && f.enum == nil && f.format == nil) {
			return false
		}
		return w.array(f, depth+1)
	case c == '"':
		s, ok := w.str(f != nil)
		return ok && (f == nil || f.checkString(s))
	case c == 't':
		return w.literal("true") && (f == nil || f.allows(tBoolean) && f.format == nil && f.inEnum(true))
	case c == 'f':
		return w.literal("false") && (f == nil || f.allows(tBoolean) && f.format == nil && f.inEnum(false))
	case c == 'n':
		return w.literal("null") && (f == nil || f.allows(tNull) && f.format == nil && f.inEnum(nil))
	case c == '-' || '0' <= c && c <= '9':
		lit, ok := w.number()
		// A number out of range is unsure, so validateBody refuses it
		// whatever the schema, and checkNumber never makes a big.Rat of
		// an exponent in the millions.
		return ok && numberInRange(lit) && (f == nil || f.checkNumber(lit))
	}
	return false
}

func (w *fastWalker) object(f *fastSchema, depth int) bool {
	w.i++ // '{'
	var seen uint64
	w.space()
	if w.i < len(w.b) && w.b[w.i] == '}' {
		w.i++
		return f == nil || f.nRequired == 0
	}
	for {
		w.space()
		if w.i >= len(w.b) || w.b[w.i] != '"' {
			return false
		}
		k, ok := w.str(f != nil)
		if !ok {
			return false
		}
		w.space()
		if w.i >= len(w.b) || w.b[w.i] != ':' {
			return false
		}
		w.i++
		var sub *fastSchema // nil: syntax only
		if f != nil {
			p, named := f.props[k]
			sub = p.sch
			if named && p.req >= 0 {
				seen |= 1 << p.req
			}
			if sub == nil {
				switch f.addl {
				case addlDeny:
					return false
				case addlSchema:
					sub = f.addlSch
				}
			}
		}
		// A name given twice is checked each time, where the library
		// sees only the last value: all passing includes that one.
		if !w.value(sub, depth) {
			return false
		}
		w.space()
		if w.i >= len(w.b) {
			return false
		}
		c := w.b[w.i]
		w.i++
		if c == '}' {
			break
		}
		if c != ',' {
			return false
		}
	}
	return f == nil || seen == 1<<f.nRequired-1
}

func (w *fastWalker) array(f *fastSchema, depth int) bool {
	w.i++ // '['
	n := 0
	w.space()
	if w.i < len(w.b) && w.b[w.i] == ']' {
		w.i++
	} else {
		for {
			var sub *fastSchema
			if f != nil {
				sub = f.items
				if n < len(f.prefix) {
					sub = f.prefix[n]
				}
			}
			if !w.value(sub, depth) {
				return false
			}
			n++
			w.space()
			if w.i >= len(w.b) {
				return false
			}
			c := w.b[w.i]
			w.i++
			if c == ']' {
				break
			}
			if c != ',' {
				return false
			}
		}
	}
	return f == nil || (f.minItems < 0 || n >= f.minItems) && (f.maxItems < 0 || n <= f.maxItems)
}

// str reads the string at w.i (its opening quote) and, if need, returns
// its value as decodeInstance would make it.
func (w *fastWalker) str(need bool) (string, bool) {
	start := w.i
	w.i++
	plain := true
	for {
		if w.i >= len(w.b) {
			return "", false
		}
		c := w.b[w.i]
		if c == '"' {
			break
		}
		if c < 0x20 {
			return "", false
		}
		w.i++
		if c != '\\' {
			continue
		}
		plain = false
		if w.i >= len(w.b) {
			return "", false
		}
		switch w.b[w.i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			w.i++
		case 'u':
			if w.i+4 >= len(w.b) {
				return "", false
			}
			for _, h := range w.b[w.i+1 : w.i+5] {
				if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
					return "", false
				}
			}
			w.i += 5
		default:
			return "", false
		}
	}
	w.i++ // the closing quote
	if !need {
		return "", true
	}
	if plain && utf8.Valid(w.b[start+1:w.i-1]) {
		return w.s[start+1 : w.i-1], true
	}
	// encoding/json's unquoting, with its replacement of invalid UTF-8
	// and lone surrogates, as decodeInstance has it.
	var s string
	if json.Unmarshal(w.b[start:w.i], &s) != nil {
		return "", false
	}
	return s, true
}

// number reads the number at w.i, by JSON's grammar.
func (w *fastWalker) number() (string, bool) {
	start := w.i
	if w.b[w.i] == '-' {
		w.i++
	}
	switch {
	case w.i >= len(w.b):
		return "", false
	case w.b[w.i] == '0':
		w.i++
	case '1' <= w.b[w.i] && w.b[w.i] <= '9':
		w.digits()
	default:
		return "", false
	}
	if w.i < len(w.b) && w.b[w.i] == '.' {
		w.i++
		if w.digits() == 0 {
			return "", false
		}
	}
	if w.i < len(w.b) && (w.b[w.i] == 'e' || w.b[w.i] == 'E') {
		w.i++
		if w.i < len(w.b) && (w.b[w.i] == '+' || w.b[w.i] == '-') {
			w.i++
		}
		if w.digits() == 0 {
			return "", false
		}
	}
	return w.s[start:w.i], true
}

func (w *fastWalker) digits() int {
	start := w.i
	for w.i < len(w.b) && '0' <= w.b[w.i] && w.b[w.i] <= '9' {
		w.i++
	}
	return w.i - start
}

func (w *fastWalker) literal(word string) bool {
	if !bytes.HasPrefix(w.b[w.i:], []byte(word)) {
		return false
	}
	w.i += len(word)
	return true
}

func (f *fastSchema) allows(t uint8) bool { return f.types == 0 || f.types&t != 0 }

func (f *fastSchema) inEnum(v any) bool { return f.enum == nil || containsSimple(f.enum, v) }

func (f *fastSchema) checkString(s string) bool {
	if !f.allows(tString) || !f.inEnum(s) {
		return false
	}
	if f.minLen >= 0 || f.maxLen >= 0 {
		n := utf8.RuneCountInString(s)
		if n < f.minLen || f.maxLen >= 0 && n > f.maxLen {
			return false
		}
	}
	if f.classRun != nil {
		if !f.classRun.match(s) {
			return false
		}
	} else if f.pattern != nil && !f.pattern.MatchString(s) {
		return false
	}
	if f.format == nil {
		return true
	}
	// Only the library's own formats are registered (compileSchema adds
	// none), so the name says which check this is.
	if f.format.Name == "date-time" && plainDateTime(s) {
		return true
	}
	return f.format.Validate(s) == nil
}

// plainDateTime reports whether s is an RFC 3339 date-time of the usual
// shape, 2006-01-02T15:04:05[.999]Z or ...+07:00, with a real date and a
// second below 60: a subset of what the library's date-time check
// accepts (FuzzPlainDateTime), made without its allocations. Anything
// else, leap seconds included, is for the library to judge.
func plainDateTime(s string) bool {
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' && s[10] != 't' || s[13] != ':' || s[16] != ':' {
		return false
	}
	year, ok1 := digits4(s[0:4])
	month, ok2 := digits2(s[5:7])
	day, ok3 := digits2(s[8:10])
	hour, ok4 := digits2(s[11:13])
	minute, ok5 := digits2(s[14:16])
	sec, ok6 := digits2(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || year < 1 || month < 1 || month > 12 || day < 1 ||
		day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return false
	}
	rest := s[19:]
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && '0' <= rest[n] && rest[n] <= '9' {
			n++
		}
		if n == 1 {
			return false
		}
		rest = rest[n:]
	}
	if rest == "Z" || rest == "z" {
		return true
	}
	if len(rest) != 6 || rest[0] != '+' && rest[0] != '-' || rest[3] != ':' {
		return false
	}
	zh, ok1 := digits2(rest[1:3])
	zm, ok2 := digits2(rest[4:6])
	return ok1 && ok2 && zh <= 23 && zm <= 59
}

func digits2(s string) (int, bool) {
	if s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' {
		return 0, false
	}
	return int(s[0]-'0')*10 + int(s[1]-'0'), true
}

func digits4(s string) (int, bool) {
	hi, ok1 := digits2(s[0:2])
	lo, ok2 := digits2(s[2:4])
	return hi*100 + lo, ok1 && ok2
}

// daysIn is the number of days of month in year, Gregorian, as package
// time counts them.
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// maxFastNumber bounds the literals checked here: big.Rat refuses some
// longer ones (exponents past a million), and the library's handling of
// those is its own.
const maxFastNumber = 512

func (f *fastSchema) checkNumber(lit string) bool {
	if f.enum != nil || f.format != nil || len(lit) > maxFastNumber {
		return false
	}
	if f.types != 0 && f.types&tNumber == 0 {
		if f.types&tInteger == 0 {
			return false
		}
		if isInt, ok := integerLiteral(lit); !ok || !isInt {
			return false
		}
	}
	if b := f.minimum; b != nil {
		if c, ok := b.cmp(lit); !ok || c < 0 {
			return false
		}
	}
	if b := f.maximum; b != nil {
		if c, ok := b.cmp(lit); !ok || c > 0 {
			return false
		}
	}
	if b := f.exclMinimum; b != nil {
		if c, ok := b.cmp(lit); !ok || c <= 0 {
			return false
		}
	}
	if b := f.exclMaximum; b != nil {
		if c, ok := b.cmp(lit); !ok || c >= 0 {
			return false
		}
	}
	if f.multipleOf != nil {
		r, ok := new(big.Rat).SetString(lit)
		if !ok || !new(big.Rat).Quo(r, f.multipleOf).IsInt() {
			return false
		}
	}
	return true
}

// integerLiteral reports whether the JSON number lit is an integer, as
// big.Rat would have it, without making one; ok is false for literals
// big.Rat might refuse (an exponent of five digits or more).
func integerLiteral(lit string) (isInt, ok bool) {
	i := 0
	if i < len(lit) && lit[i] == '-' {
		i++
	}
	start := i
	for i < len(lit) && '0' <= lit[i] && lit[i] <= '9' {
		i++
	}
	intPart := lit[start:i]
	frac := ""
	if i < len(lit) && lit[i] == '.' {
		i++
		fs := i
		for i < len(lit) && '0' <= lit[i] && lit[i] <= '9' {
			i++
		}
		frac = lit[fs:i]
	}
	exp := 0
	if i < len(lit) && (lit[i] == 'e' || lit[i] == 'E') {
		i++
		neg := false
		if i < len(lit) && (lit[i] == '+' || lit[i] == '-') {
			neg = lit[i] == '-'
			i++
		}
		digits := lit[i:]
		if len(digits) == 0 || len(digits) > 4 {
			return false, false
		}
		for ; i < len(lit); i++ {
			if lit[i] < '0' || lit[i] > '9' {
				return false, false
			}
			exp = exp*10 + int(lit[i]-'0')
		}
		if neg {
			exp = -exp
		}
	}
	if i != len(lit) || intPart == "" {
		return false, false
	}
	// The value is 0.DIGITS * 10^point with DIGITS = intPart+frac: an
	// integer when no nonzero digit lies past the point.
	point := len(intPart) + exp
	for k := 0; k < len(intPart)+len(frac); k++ {
		var c byte
		if k < len(intPart) {
			c = intPart[k]
		} else {
			c = frac[k-len(intPart)]
		}
		if k >= point && c != '0' {
			return false, true
		}
	}
	return true, true
}

// classRun matches what a regexp of the shape ^C{min,max}$ (or ^C*$,
// ^C+$, ^C?$) matches, C a character class or '.': a whole string of
// min to max runes, each in C. Runes are read as package regexp reads
// them (an invalid byte is utf8.RuneError), so the two agree on every
// string; FuzzClassRun holds them to it.
type classRun struct {
	ascii    [2]uint64 // bit r set: ASCII rune r is in the class
	ranges   []rune    // the class as syntax.Regexp.Rune: lo, hi pairs
	min, max int       // max -1: no bound
}

// compileClassRun reads a pattern as regexp.Compile does (Perl syntax);
// nil if it is not of the shape classRun handles.
func compileClassRun(pattern string) *classRun {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil || re.Op != syntax.OpConcat || len(re.Sub) != 3 ||
		re.Sub[0].Op != syntax.OpBeginText || re.Sub[2].Op != syntax.OpEndText {
		return nil
	}
	rep := re.Sub[1]
	c := &classRun{}
	switch rep.Op {
	case syntax.OpStar:
		c.min, c.max = 0, -1
	case syntax.OpPlus:
		c.min, c.max = 1, -1
	case syntax.OpQuest:
		c.min, c.max = 0, 1
	case syntax.OpRepeat:
		c.min, c.max = rep.Min, rep.Max
	default:
		return nil
	}
	if len(rep.Sub) != 1 {
		return nil
	}
	switch cls := rep.Sub[0]; cls.Op {
	case syntax.OpCharClass:
		c.ranges = cls.Rune
	case syntax.OpAnyCharNotNL:
		c.ranges = []rune{0, '\n' - 1, '\n' + 1, unicode.MaxRune}
	case syntax.OpAnyChar:
		c.ranges = []rune{0, unicode.MaxRune}
	default:
		return nil
	}
	if len(c.ranges)%2 != 0 || c.min < 0 {
		return nil
	}
	for r := rune(0); r < utf8.RuneSelf; r++ {
		if c.inRanges(r) {
			c.ascii[r/64] |= 1 << (r % 64)
		}
	}
	return c
}

func (c *classRun) inRanges(r rune) bool {
	for i := 0; i < len(c.ranges); i += 2 {
		if c.ranges[i] <= r && r <= c.ranges[i+1] {
			return true
		}
	}
	return false
}

func (c *classRun) match(s string) bool {
	n := 0
	for i := 0; i < len(s); n++ {
		if c.max >= 0 && n >= c.max {
			return false
		}
		if b := s[i]; b < utf8.RuneSelf {
			if c.ascii[b/64]&(1<<(b%64)) == 0 {
				return false
			}
			i++
			continue
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		if !c.inRanges(r) {
			return false
		}
		i += w
	}
	return n >= c.min
}
