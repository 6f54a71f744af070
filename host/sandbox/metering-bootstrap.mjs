// Entry of the metering worker thread. Plain JavaScript on purpose: the worker starts without the
// parent's loader flags, imports binaryen natively (0.3 s; through tsx's loader the same import
// takes 6 s because tsx transforms the 14 MiB file), and only then registers tsx to load the
// TypeScript worker. The module cache keeps the native binaryen for the TypeScript side.
await import('binaryen');
const { register } = await import('tsx/esm/api');
register();
await import('./metering-worker.ts');
