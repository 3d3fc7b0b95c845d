package detect

import (
	"fmt"
	"regexp"
	"strconv"
)

// PosError is a problem in a rule file, located by file, line and column
// (both 1-based). Its text is "file:line:col: message".
type PosError struct {
	File string
	Line int
	Col  int
	Msg  string
}

// Error implements error.
func (e *PosError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
}

// yamlLineErr matches the YAML parser's syntax errors, which carry a line
// but no column.
var yamlLineErr = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns a YAML parser error into a PosError. The parser reports
// lines only, so the column is 1.
func syntaxError(file string, err error) error {
	m := yamlLineErr.FindStringSubmatch(err.Error())
	if m == nil {
		return &PosError{File: file, Line: 1, Col: 1, Msg: err.Error()}
	}
	line, _ := strconv.Atoi(m[1])
	return &PosError{File: file, Line: line, Col: 1, Msg: "yaml syntax: " + m[2]}
}
