package normalize

// CTGunzip exposes the bounded decompression with a small limit, so a test
// can prove the bound without inflating 256 MiB.
var CTGunzip = ctGunzip
