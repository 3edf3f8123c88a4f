// Package datetime holds the one form in which Hearth writes times, on the
// wire (firehose events, XRPC answers, AppView views, PLC operations) and
// in its store: UTC with exactly three digits of milliseconds and a Z, the
// form JavaScript's Date.toISOString gives and so the official PDS and PLC
// directory write. Peers compare these strings, and the store sorts them
// as text, so the layout is fixed: indigo's syntax.AtprotoDatetimeLayout
// trims trailing zeros of the milliseconds and would not do.
package datetime

// Layout is the time.Format layout of that form. Format only times in UTC
// with it: the Z is literal.
const Layout = "2006-01-02T15:04:05.000Z"
