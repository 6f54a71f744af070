// Entry of the ingest worker thread. Plain JavaScript: the worker starts without the parent's loader
// flags, registers tsx, then loads the TypeScript worker.
const { register } = await import('tsx/esm/api');
register();
await import('./ingest-worker.ts');
