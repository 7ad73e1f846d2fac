// The registry of capture formats, tried in this order against the input's first 16 bytes (the
// format is always sniffed from the magic, never taken from the file name). To add a format,
// import its CaptureFormatSpec and append it to the list.
import { dpmiFormat } from './dpmi';
import { pcapFormat } from './pcap';
import { pcapngFormat } from './pcapng';
import type { CaptureFormatSpec } from './reader';

export const captureFormats: CaptureFormatSpec[] = [pcapFormat, pcapngFormat, dpmiFormat]; // DPMI last: its 0.5/0.6 signature is weakest
