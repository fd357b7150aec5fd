// The bytes of a typed array, for APIs that take a Uint8Array. The array must
// be one the caller owns (a fresh copy), never a view into WebAssembly memory,
// which can move or detach when that memory grows.
export function bytesOf(array) {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}
