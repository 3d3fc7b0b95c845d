// Package syslog is the collector that receives syslog messages over UDP
// (RFC 5426), TCP (RFC 6587) and TLS (RFC 5425), as nginx, HAProxy, rsyslog
// and syslog-ng send them, and hands their MESSAGE part to ingest.Emit in
// batches.
//
// Each TCP/TLS connection is framed by its first byte: a digit means
// octet counting ("LEN SP MSG"), anything else means one message per line,
// ended by LF (or NUL). The header, RFC 5424 or RFC 3164 (BSD, tolerating a
// missing timestamp, host, tag or pid), is parsed only to be stripped:
// Record.Data is the message the application logged (the access-log line),
// because that is what the normalizers parse. The APP-NAME (BSD tag) picks
// the normalizer through Config.Sources, else Config.Source. A frame
// without a recognisable header is emitted whole with the default source
// (and counted), so the normalize stage dead-letters it rather than it
// vanishing here.
//
// Record identity. Syslog cannot be replayed from the sender, so a message
// gets its identity when it is received: Record.Stream is
// "<name>/<proto>:<bound addr>/<Run start, unix ns>/<connection number>"
// (connection 0 for UDP) and Record.Offset the message's number within that
// stream. A batch retried after an Emit error carries the same ids, so the
// sinks drop what a failed-but-actually-written attempt duplicated.
// Record.Origin is "syslog/<proto>/<sender ip:port>".
//
// Delivery. Messages go through a bounded queue (queue_size) to one
// emitter, which retries each batch until Emit acknowledges it. While
// emit is blocked or failing, the queue fills and then:
//   - TCP and TLS connections stop being read: TCP flow control blocks the
//     sender, nothing is dropped.
//   - UDP datagrams are dropped, counted in Stats.UDPDropped and logged (at
//     most every 10s): UDP has no flow control, and a datagram not read in
//     time would be lost in the kernel anyway, uncounted.
//
// On shutdown (Run's context ends) the listeners stop accepting,
// connections are read for 200ms more to take in what senders already
// wrote, and everything received is emitted within shutdown_timeout; what
// is still unacknowledged then is counted in Stats.Lost and logged.
//
// What it deliberately does not do: acknowledge messages to the sender
// (plain syslog has no acknowledgement, so a crash loses what sat in the
// queue and the in-flight batch, at most queue_size + batch_lines
// messages; RELP is not implemented), interpret the header timestamp or
// keep the syslog hostname (Record has no field for them; Origin keeps the
// sender's address), redact secrets (the normalizers fingerprint
// credentials), split one datagram into several messages, or DTLS. Every
// listener can be restricted by Config.Allow; the TLS listener can require
// client certificates (client_ca_file).
package syslog
