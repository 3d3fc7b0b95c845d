package testenv

import "testing"

// SecureOpenSearch is the secured test OpenSearch node that
// scripts/opensearch-secure.sh starts (scripts/services.sh starts it with
// the others): HTTPS with a certificate from a CA of its own, and HTTP
// basic auth for one internal user.
type SecureOpenSearch struct {
	// URL is the node's https:// address (TW_TEST_OPENSEARCH_TLS).
	URL string
	// CAFile is the PEM file of the CA that signed the node's certificate
	// (TW_TEST_OPENSEARCH_TLS_CA).
	CAFile string
	// User and Password are the internal user's credentials
	// (TW_TEST_OPENSEARCH_TLS_USER, TW_TEST_OPENSEARCH_TLS_PASSWORD).
	User     string
	Password string
}

// OpenSearchTLS returns the secured test OpenSearch node. Like OpenSearch,
// it skips the test on a developer's machine when the node's variables are
// not set, and fails it under CI=true.
func OpenSearchTLS(t testing.TB) SecureOpenSearch {
	t.Helper()
	const what = "secured OpenSearch (TLS + basic auth)"
	return SecureOpenSearch{
		URL:      need(t, "TW_TEST_OPENSEARCH_TLS", what),
		CAFile:   need(t, "TW_TEST_OPENSEARCH_TLS_CA", what),
		User:     need(t, "TW_TEST_OPENSEARCH_TLS_USER", what),
		Password: need(t, "TW_TEST_OPENSEARCH_TLS_PASSWORD", what),
	}
}
