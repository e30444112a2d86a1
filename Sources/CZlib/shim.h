// zlib's crc32, for netmp-tcp-driver's check of every byte moved (the same CRC the
// Python peer computes with zlib.crc32).
#include <zlib.h>
