//go:build unix

package file

import (
	"io/fs"
	"syscall"
)

// identitySupported reports whether files have a device+inode identity here.
const identitySupported = true

// identityOf returns the device and inode of fi, which survive a rename.
func identityOf(fi fs.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}, true //nolint:unconvert // Dev is int32 on some unixes
}
