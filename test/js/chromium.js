// The headless Chromium every browser test and benchmark launches: Debian's
// (apt-get install -y chromium), or CHROMIUM_PATH's. The flags keep it from
// phoning home or updating itself mid-run; --no-sandbox because CI runs as root.
import { existsSync } from 'node:fs';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/** false when Chromium is there, else the reason to skip, for node:test's `skip`. */
export const skipWithoutChromium = existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} not found; install it with: sudo apt-get install -y chromium`;
