//go:build !unix

package file

import "io/fs"

// identitySupported reports whether files have a device+inode identity here.
const identitySupported = false

// identityOf is unsupported off unix: New refuses to build a collector.
func identityOf(fs.FileInfo) (fileID, bool) { return fileID{}, false }
