package file

import "strconv"

// fileID identifies a file independently of its name.
type fileID struct{ dev, ino uint64 }

// String is the checkpoint key, "dev:inode".
func (id fileID) String() string {
	return strconv.FormatUint(id.dev, 10) + ":" + strconv.FormatUint(id.ino, 10)
}
