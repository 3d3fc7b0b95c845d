// Package redact replaces the credentials found in raw log lines with keyed
// fingerprint tokens before the lines leave the collector, so secrets never
// reach Kafka, the index or an alert.
//
// A token is "twfp_<type>_<24 hex>" (normalize.FingerprintPrefix): the hex is
// the first 12 bytes of HMAC-SHA256(key, type+":"+secret), so one credential
// has one token across sources and formats while the secret cannot be
// recovered without the key. A JWT becomes
// "twfp_jwt_<24 hex>.<base64url JSON of iss, sub, client_id>", its claims
// decoded, never verified, each capped at 64 bytes.
//
// The Redactor finds, anywhere in a line and in any format (plain text,
// nginx escapes, JSON, JSON inside JSON): Bearer and Basic credentials,
// JWTs, secret query parameters and key=value pairs (api_key, token,
// password, sig, X-Amz-Signature, …), session cookies, secret JSON fields and
// headers (authorization, x-api-key, password, …) and the password of URL
// userinfo. It replaces only the secret: quotes, escapes and separators stay,
// and a token is never redacted again (Redact is idempotent).
//
// What it deliberately does not do: it does not parse formats (a line is a
// byte string scanned once for trigger bytes), it does not verify or decode
// credentials beyond reading public JWT claims, and it keeps public
// identifiers (the AWS access key id in X-Amz-Credential, user names in URL
// userinfo). It is heuristic: a secret logged under a name it does not know
// is not found; add the name with query_params or headers.
//
// Wrap applies it to every record an ingest.Emit receives; delivery is that
// of the wrapped Emit.
package redact
