/**
 * Every limit the host enforces, in one place. Each is named `<thing><Unit>Max` (or `Min`) and says
 * why it exists. Each is tested on both sides: at the limit passes, one over fails with its code.
 * Operators may lower (never raise past a hard ceiling) some of them through config; see config.ts.
 */
export const LIMITS = {
  /** A WebSocket frame larger than this closes the connection (1009): it bounds per-frame memory. */
  frameBytesMax: 64 * 1024,
  /** Question text per ask: bounds embedding and retrieval work per ask. */
  askTextCharsMax: 4_000,
  /** Ask ids are echoed in every frame of the answer; keep them short. */
  askIdCharsMax: 128,
  /** Feedback comments are stored per tenant; bound what one frame can add. */
  feedbackCommentCharsMax: 2_000,
  /** Asks in flight per session: a client cannot queue unbounded work on one sandbox. */
  asksInFlightPerSessionMax: 4,
  /** Frames per session per 10 s window before the connection closes (1008): cheap flood defence. */
  framesPerWindowMax: 200,
  /** The window for framesPerWindowMax, in milliseconds. */
  frameWindowMsMax: 10_000,
  /** Frames a client may send before its session is `ready` (they wait for the start); one more closes the connection (1008). */
  framesBeforeReadyMax: 16,
  /** Bytes queued to a client that does not read: past this the connection closes (1008). */
  socketBufferedBytesMax: 4 * 1024 * 1024,
  /** Turns of history kept per session and handed to plugins: bounds context assembly work. */
  historyTurnsMax: 8,
  /**
   * How long a request or upgrade waits for its cell to be ready (a restart) or its tenant's move
   * to finish, before it gets CELL_UNAVAILABLE: a crashed cell's standby takes over in milliseconds.
   */
  cellWaitMsMax: 5_000,
  /** Budget exhaustions (fuel or watchdog) within burnerWindowMsMax that make a tenant a burner: deferred, and moved to the quarantine cell. */
  burnerExhaustionsMin: 5,
  /** The window for burnerExhaustionsMin, in milliseconds. */
  burnerWindowMsMax: 10_000,
  /** The most of its cell's loop a burner may hold (each slice is followed by a pause), until it is quarantined or stops burning. */
  burnerLoopShareMax: 0.2,
  /** How long a quarantined tenant must go without exhausting its budget before it returns to its own cell. */
  quarantineQuietMsMin: 120_000,
  /** Smallest PLUGIN_MEMORY_MB: a few sessions of 16 MiB plugins must fit. */
  pluginMemoryMbMin: 64,
  /** Largest PLUGIN_MEMORY_MB (4 TiB): beyond any machine this runs on. */
  pluginMemoryMbMax: 4 * 1024 * 1024,
  /** Part of a cell's plugin memory budget only tenants other than the heaviest may use: a newcomer still gets in. */
  pluginMemoryReserveShare: 0.1,
  /** Most of a cell's plugin memory budget one tenant may hold, whatever the others hold. */
  pluginMemoryTenantShareMax: 0.5,
  /** Cell processes per host (WORKERS): each costs a Node process's baseline memory, and more than the cores buys nothing. */
  cellsMax: 64,
  /** Live WebSocket sessions per tenant: one tenant cannot exhaust the host's sessions. */
  sessionsPerTenantMax: 10_000,
  /** Tenant LMDB environments open at once; idle ones are closed first (file handles, mappings). */
  openEnvironmentsMax: 256,
  /**
   * How long a cell waits for a moving tenant's HTTP requests to finish before it closes the
   * tenant's environment anyway: a move (quarantine, say) cannot be held off forever by one request.
   */
  tenantMoveDrainMsMax: 10_000,
  /** HTTP JSON body size: bounds parse memory for one request. */
  httpBodyBytesMax: 8 * 1024 * 1024,
  /** Documents per POST /v1/documents: a batch is one transaction and must stay bounded. */
  documentsPerRequestMax: 1_000,
  /** Characters per document: bounds chunking work and a single write. */
  documentCharsMax: 1_000_000,
  /** Document ids are keys in LMDB (max key 1978 bytes) and appear in chunk ids. */
  documentIdCharsMax: 200,
  /** Titles are shown to end users and stored with every chunk. */
  documentTitleCharsMax: 500,
  /** Metadata entries per document: metadata filters compare each one. */
  metadataEntriesMax: 32,
  /** Characters per metadata key or value. */
  metadataValueCharsMax: 256,
  /** Chunks per tenant index: keeps brute-force vector search within its latency target. */
  chunksPerTenantMax: 200_000,
  /** Chunk records kept in memory per open tenant index (LRU): bounds memory, spares decryption. */
  chunkRecordsCachedMax: 4_096,
  /** Results a plugin may ask index_search for in one call. */
  searchHitsMax: 100,
  /** Chunks the retrieval plugin may return for one ask. */
  retrievedChunksMax: 32,
  /** Messages the prompt plugin may assemble for one ask. */
  promptMessagesMax: 64,
  /** Bytes of one plugin call's output: a plugin cannot make the host buffer unbounded data. */
  pluginOutputBytesMax: 1024 * 1024,
  /** Host-function calls per plugin call: bounds the work one plugin call can make the host do. */
  hostCallsPerPluginCallMax: 256,
  /** Bytes of one host-function argument read from plugin memory. */
  hostCallInputBytesMax: 256 * 1024,
  /** Bytes of a kv key (after namespacing by plugin slot). */
  kvKeyBytesMax: 256,
  /** Bytes of one kv value. */
  kvValueBytesMax: 64 * 1024,
  /** Total kv bytes per tenant and plugin slot. */
  kvBytesPerSlotMax: 16 * 1024 * 1024,
  /** Characters of one lexical term; longer words are cut: bounds BM25 dictionary memory per term. */
  tokenCharsMax: 64,
  /** Smallest chunk size a chunker may be asked for: tinier chunks lose context and multiply rows. */
  chunkTargetCharsMin: 100,
  /** Largest chunk size: a chunk is embedded whole and pasted into model context. */
  chunkTargetCharsMax: 8_000,
  /** Characters of text one embed call may embed. */
  embedTextCharsMax: 16_000,
  /** Log lines per plugin call: plugin logging cannot flood the host log. */
  pluginLogLinesPerCallMax: 32,
  /** Pages (64 KiB) Extism may allocate host-side for one plugin: 16 MiB. */
  extismHostPagesMax: 256,
  /** Model answer characters: a runaway provider stream is cut here. */
  answerCharsMax: 32_000,
  /** Wall-clock time a model provider has to finish an answer. */
  modelTimeoutMsMax: 60_000,
  /** Lifetime of a browser chat ticket. */
  ticketTtlMsMax: 60_000,
  /** Tickets outstanding at once host-wide; unredeemed tickets expire. */
  ticketsOutstandingMax: 100_000,
  /** Tickets outstanding per tenant: one tenant's key cannot fill the host-wide book for everyone. */
  ticketsOutstandingPerTenantMax: 1_000,
  /** Tenants per host registry. */
  tenantsMax: 100_000,
  /**
   * Active (unrevoked) API keys per tenant: rotation needs two or three at once; the bound keeps a
   * tenant from growing the registry (and every listing of its keys) without limit.
   */
  apiKeysPerTenantMax: 32,
  /** Tenant names. */
  tenantNameCharsMax: 100,
  /** System prompts are part of every ask's context. */
  systemPromptCharsMax: 8_000,
  /** Bytes of an uploaded plugin module: bounds vetting and metering work and what a tenant stores. */
  pluginUploadBytesMax: 4 * 1024 * 1024,
  /**
   * A plugin's linear memory: uploads get their memory maximum rewritten to at most this. Extism's
   * `maxPages` does not cap the plugin's own memory, so the cap is compiled into the module.
   */
  pluginMemoryBytesMax: 16 * 1024 * 1024,
  /**
   * How deep one function's expressions may nest (blocks, loops and operands alike): binaryen's
   * validator and writer recurse once per level, and deeper modules overflowed the metering
   * worker's stack. Compilers stay far below it; metering adds at most one level per loop.
   */
  pluginExpressionDepthMax: 4_096,
  /** Elements per plugin table (tables get this maximum too); an element costs host memory. */
  pluginTableElementsMax: 100_000,
  /**
   * The hard ceiling of the operator's fuel ceiling (config PLUGIN_FUEL_PER_CALL_MAX): about 0.5 s
   * of the worst-case metered loop on the reference 2-core machine. A call runs on its cell's event
   * loop, so an operator who raises the ceiling lets one call hold that loop (and its tenants) longer.
   */
  pluginFuelPerCallMax: 1_000_000_000,
  /**
   * The operator's fuel ceiling by default, and so the most a tenant's `pluginFuelPerCall` may be:
   * about 10 ms of the worst-case metered loop, the longest slice one plugin call may hold a cell's loop.
   */
  pluginFuelPerCallCeilingDefault: 20_000_000,
  /** Default fuel per call of a tenant that sets none: the default ceiling. */
  pluginFuelPerCallDefault: 20_000_000,
  /** What a plugin instance costs besides its linear memory (the instance, Extism's state, its host functions), for the memory budget. */
  pluginInstanceOverheadBytes: 64 * 1024,
  /** Smallest `pluginFuelPerCall` a tenant may set: below this the built-in plugins cannot finish. */
  pluginFuelPerCallMin: 1_000_000,
  /**
   * Wall-clock time of one plugin call before the watchdog discards the instance. Defense in depth
   * behind fuel: a metered call stops far sooner; this catches what metering would miss.
   */
  pluginCallWallMsMax: 2_000,
  /** Time the metering worker may spend on one module before the upload is refused: a pathological module cannot occupy it. */
  pluginMeteringMsMax: 30_000,
  /** Modules waiting for a cell's metering worker; more uploads at once get PLUGIN_BUSY. */
  pluginMeteringQueueMax: 8,
  /** Modules of one tenant waiting for or in the metering worker: its large uploads cannot fill the queue for everyone. */
  pluginMeteringPerTenantMax: 2,
  /**
   * Host functions refuse to start this close to a call's watchdog deadline, so the watchdog's
   * termination cannot land inside a host function's storage transaction.
   */
  pluginHostCallMarginMs: 250,
  /** Versions kept per plugin slot (the active one and its rollback history). */
  pluginVersionsPerSlotMax: 4,
  /** Bytes of plugin modules one tenant may store across slots and versions. */
  pluginStoreBytesPerTenantMax: 48 * 1024 * 1024,
  /** Characters of document text per tenant per minute (four full 8 MiB requests): re-posting megabytes in a loop cannot keep a cell's ingest worker for itself. */
  ingestCharsPerTenantPerMinuteMax: 32_000_000,
  /** Document batches one tenant may have being prepared or waiting in its cell's ingest worker. */
  ingestsPerTenantMax: 2,
  /** Time the ingest worker may spend on one batch (8 MiB of text takes seconds) before it is stopped. */
  ingestJobMsMax: 120_000,
  /** Asks per tenant per minute, across its sessions: one tenant cannot monopolise the host's CPU. */
  asksPerTenantPerMinuteMax: 6_000,
  /**
   * Semantic cache entries per tenant: the similarity path scores every cached question vector of
   * the tenant on each ask that misses the exact path, and memory holds them all (1 KiB each at 256
   * dimensions).
   */
  cacheEntriesPerTenantMax: 10_000,
  /** Decoded cache entries kept in memory per open tenant, most recently served first: a hot question skips the storage read. */
  cacheHotEntriesPerTenantMax: 64,
  /** Ceiling of a tenant's `cache.quotaBytes`: cache entries live in the tenant's environment and count against its disk. */
  cacheBytesPerTenantMax: 256 * 1024 * 1024,
  /** Floor of `cache.quotaBytes`: below it a handful of answers would not fit. */
  cacheBytesPerTenantMin: 16 * 1024,
  /** Ceiling of `cache.ttlSeconds` (30 days): an answer older than this is stale whatever the tenant prefers. */
  cacheTtlSecondsMax: 30 * 24 * 3600,
  /** Texts per request to a remote embeddings provider: bounds one request and one response body. */
  embedBatchTextsMax: 128,
  /** Dimension a remote embedder may return: the vector index holds `dim` floats per chunk. */
  embedDimMax: 4_096,
  /** Wall-clock time an embeddings provider has to answer one request. */
  embedTimeoutMsMax: 60_000,
  /**
   * Tenant label values on /metrics; tenants seen after these share the label `_other`. Each value
   * adds series to every tenant-labelled metric, and a Prometheus server's memory grows with series.
   */
  metricsTenantLabelsMax: 100,
  /** Asks kept per tenant for the console's recent asks (ids, outcome and timings, never text). */
  recentAsksPerTenantMax: 50,
  /** Tenants whose recent asks are kept at once, the least recently asking dropped first: bounds that memory. */
  recentAsksTenantsMax: 1_000,
  /** Leak blocks and plugin failures kept for the operator view, newest first. */
  incidentsKeptMax: 200,
  /**
   * Incidents kept per tenant in that view (its newest): one tenant flooding blocked asks or failing
   * plugins cannot push every other tenant's incidents out; it would take ten such tenants.
   */
  incidentsPerTenantMax: 20,
  /** Plugin log lines kept per tenant for its console (they are plugin output, so never in the host log). */
  pluginLogLinesPerTenantMax: 100,
  /** Characters kept of one plugin log line: with the line limit, bounds the memory one tenant's plugin log takes. */
  pluginLogLineCharsMax: 1_000,
  /** Characters of chunk text sent with each source of a `done` frame: enough to recognise the passage, and a frame holds up to 32 sources. */
  sourceSnippetCharsMax: 280,
  /** Feedback entries kept per tenant: a flood of ratings cannot grow a tenant's store without bound; the oldest go first. */
  feedbackEntriesPerTenantMax: 100_000,
  /** Longest feedback retention a tenant may set (two years): feedback holds end users' questions. */
  feedbackRetentionDaysMax: 730,
  /** Blocked-leak audit entries per tenant per minute; more are counted into the next entry, so an attacker cannot grow the append-only log at the ask rate. */
  auditLeakEntriesPerMinuteMax: 60,
  /** Audit entries per GET /v1/audit page: bounds one response. */
  auditEntriesPerPageMax: 1_000,
  /** Tenants in one training pool: the leak audit holds every pooled example in memory. */
  poolTenantsMax: 64,
  /** Examples in one training pool (after the audit); the response and the audit's index hold them all. */
  poolExamplesMax: 20_000,
  /** Bytes of one frame of a tenant export file: the importer decrypts a frame whole before it parses it. */
  exportFrameBytesMax: 16 * 1024 * 1024,
  /** Bytes of one tenant export a host takes in an import over HTTP: the body is spooled to disk before it is read, and a tenant at its chunk limit stays well under this. */
  tenantImportBytesMax: 4 * 1024 * 1024 * 1024,
  /** Hosts in one fleet: each is a backend of the router's configuration, health-checked every few seconds. */
  fleetHostsMax: 4_096,
  /** Characters of a fleet host name (`[a-z0-9-]`): a name is a backend name of the router and a value of its map. */
  fleetHostNameCharsMax: 32,
  /** Moves the fleet controller runs at once: each freezes a tenant's writes and streams its export through the controller. */
  fleetMovesInFlightMax: 4,
  /**
   * Pre-copies of one move while its tenant still takes writes: when the tenant wrote during one,
   * the next copies it again (a writer that pauses is caught up); after the last, it is frozen and,
   * if it wrote since, copied again under the freeze.
   */
  fleetPrecopyRoundsMax: 3,
  /** Time a host has to answer one fleet step other than the transfer (freeze, retire, activate, shred, state). */
  fleetHostCallMsMax: 30_000,
  /** Time one tenant's export may take to stream into its import before the move step fails (and stays in the journal). */
  fleetTransferMsMax: 600_000,
} as const;

/** The names of all limits. */
export type LimitName = keyof typeof LIMITS;
