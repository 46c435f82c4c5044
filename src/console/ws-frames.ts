/**
 * Encodes many WebSocket text frames into one Buffer (server → client frames are unmasked, RFC 6455 §5.2), so a
 * batch of lines is encoded once and the same bytes are written to every attacher in one socket write.
 */
export interface EncodedBatch {
  bytes: Buffer;
  /** offsets[i] is where frame i starts; offsets[frames] === bytes.length. */
  offsets: Uint32Array;
}

const FIN_TEXT = 0x81;

function headerSize(length: number): number {
  if (length < 126) return 2;
  return length < 65536 ? 4 : 10;
}

export function encodeTextFrames(payloads: readonly string[]): EncodedBatch {
  const lengths = new Uint32Array(payloads.length);
  let total = 0;
  for (let i = 0; i < payloads.length; i += 1) {
    const length = Buffer.byteLength(payloads[i]!, 'utf8');
    lengths[i] = length;
    total += headerSize(length) + length;
  }
  const bytes = Buffer.allocUnsafe(total);
  const offsets = new Uint32Array(payloads.length + 1);
  let at = 0;
  for (let i = 0; i < payloads.length; i += 1) {
    offsets[i] = at;
    const length = lengths[i]!;
    bytes[at] = FIN_TEXT;
    if (length < 126) {
      bytes[at + 1] = length;
      at += 2;
    } else if (length < 65536) {
      bytes[at + 1] = 126;
      bytes.writeUInt16BE(length, at + 2);
      at += 4;
    } else {
      bytes[at + 1] = 127;
      bytes.writeUInt32BE(0, at + 2);
      bytes.writeUInt32BE(length, at + 6);
      at += 10;
    }
    at += bytes.write(payloads[i]!, at, 'utf8');
  }
  offsets[payloads.length] = at;
  return { bytes, offsets };
}
