/**
 * The embedded demo: on the first start the host creates a demo tenant ("Larkspur Cycles", a
 * made-up bicycle shop) with a handful of documents written for this project, so a newcomer can ask
 * a grounded question within a minute. Its API key is kept in `DATA_DIR/demo.key` (mode 0600) so
 * later starts can print it again; no other tenant's key is ever written down.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ingestDocuments, type DocumentInput } from '../retrieval/ingest.ts';
import type { Embedder } from '../retrieval/embedder.ts';
import { createTenant } from './lifecycle.ts';
import { mintScopeFromApiKey, operatorFromLocalAccess, type TenantAuthority } from './scope.ts';

/** The demo tenant's documents. */
export const DEMO_DOCUMENTS: DocumentInput[] = [
  {
    id: 'warranty',
    title: 'Warranty policy',
    metadata: { topic: 'policy' },
    text:
      'Every Larkspur frame carries a lifetime warranty against manufacturing defects for the original owner. ' +
      'Components such as brakes, chains and tyres are covered for two years from the date of purchase. ' +
      'E-bike batteries are covered for three years or 800 full charge cycles, whichever comes first.\n\n' +
      'The warranty does not cover crash damage, normal wear, or bikes used for commercial rental. ' +
      'To make a claim, bring the bike and the receipt to any Larkspur store; most claims are decided within five working days.',
  },
  {
    id: 'returns',
    title: 'Returns and refunds',
    metadata: { topic: 'policy' },
    text:
      'You can return an unused bike within 30 days of delivery for a full refund. ' +
      'Accessories and clothing can be returned within 60 days if the tags are still attached. ' +
      'Refunds go back to the original payment method within ten days of the return reaching our warehouse.\n\n' +
      'Custom-built bikes cannot be returned, but they are covered by the warranty like any other bike.',
  },
  {
    id: 'shipping',
    title: 'Shipping and delivery',
    metadata: { topic: 'orders' },
    text:
      'Orders placed before 2 pm ship the same working day. Standard delivery takes three to five working days and is free for orders over 50 euros. ' +
      'Express delivery arrives the next working day and costs 15 euros.\n\n' +
      'Bikes are shipped 90 percent assembled; the handlebar and pedals need fitting, and a tool kit is included in the box.',
  },
  {
    id: 'kestrel-e2',
    title: 'Kestrel E2 e-bike specifications',
    metadata: { topic: 'product' },
    text:
      'The Kestrel E2 is a commuter e-bike with a 250 W mid-drive motor and a 540 Wh removable battery. ' +
      'A full charge takes about four and a half hours with the supplied 4 A charger. ' +
      'The range is 60 to 110 km depending on the assist level, the terrain and the rider. ' +
      'The frame is aluminium, the bike weighs 21.5 kg, and the maximum rider weight is 120 kg.\n\n' +
      'The Kestrel E2 has hydraulic disc brakes, an eight-speed hub gear and integrated front and rear lights powered by the main battery.',
  },
  {
    id: 'maintenance',
    title: 'Maintenance schedule',
    metadata: { topic: 'service' },
    text:
      'We recommend a basic service every 1,000 km or every six months, whichever comes first. ' +
      'A basic service includes a brake check, gear adjustment, chain lubrication and tyre pressure check. ' +
      'Chains usually need replacing every 3,000 to 5,000 km.\n\n' +
      'The first service within eight weeks of purchase is free at any Larkspur store. ' +
      'Keep e-bike batteries between 20 and 80 percent charge when storing them for more than a month.',
  },
  {
    id: 'support',
    title: 'Opening hours and support',
    metadata: { topic: 'contact' },
    text:
      'Larkspur stores are open Monday to Saturday from 9 am to 6 pm, and on Sunday from 11 am to 4 pm. ' +
      'Phone support is available on weekdays from 8 am to 8 pm. ' +
      'The workshop takes walk-in repairs for punctures and brake adjustments; larger repairs need a booking.',
  },
];

/**
 * Ensures the demo tenant exists; creates it with its documents on first start.
 * @returns the demo API key (read back from `DATA_DIR/demo.key`) and whether it was just created.
 */
export async function ensureDemoTenant(authority: TenantAuthority, embedder: Embedder, dataDir: string): Promise<{ apiKey: string; created: boolean } | undefined> {
  const keyFile = join(dataDir, 'demo.key');
  if (existsSync(keyFile)) {
    const apiKey = readFileSync(keyFile, 'utf8').trim();
    // The demo tenant may have been deleted or its key revoked since; then say nothing.
    if (authority.registry.authenticate(apiKey) === undefined) return undefined;
    return { apiKey, created: false };
  }
  const { apiKey } = createTenant(authority, operatorFromLocalAccess(), 'Larkspur Cycles (demo)');
  const scope = mintScopeFromApiKey(authority, apiKey);
  try {
    await ingestDocuments(scope, embedder, DEMO_DOCUMENTS);
  } finally {
    scope.release();
  }
  writeFileSync(keyFile, `${apiKey}\n`, { mode: 0o600 });
  return { apiKey, created: true };
}
