/**
 * The WebAssembly JS API types the sandbox and the retrieval kernels use. The project's lib (ES2023)
 * and @types/node 20 do not declare them (they live in lib.dom), and pulling every DOM global into a
 * server program to get them would hide real mistakes; so the few we use are declared here.
 */
export {};

declare global {
  namespace WebAssembly {
    type ImportExportKind = 'function' | 'table' | 'memory' | 'global' | 'tag';
    interface ModuleExportDescriptor {
      kind: ImportExportKind;
      name: string;
    }
    interface ModuleImportDescriptor {
      kind: ImportExportKind;
      module: string;
      name: string;
    }
    interface MemoryDescriptor {
      /** Initial size in 64 KiB pages. */
      initial: number;
      /** The most pages `grow` may reach. */
      maximum?: number;
    }
    class Memory {
      constructor(descriptor: MemoryDescriptor);
      /** Detached by `grow`: re-derive views from it after growing. */
      readonly buffer: ArrayBuffer;
      /** Returns the previous size in pages; throws a RangeError past `maximum` or when out of memory. */
      grow(deltaPages: number): number;
    }
    interface Global {
      value: unknown;
    }
    type ExportValue = ((...args: never[]) => unknown) | Global | Memory | object;
    type Exports = Record<string, ExportValue>;
    class Module {
      constructor(bytes: ArrayBufferView | ArrayBuffer);
      static imports(module: Module): ModuleImportDescriptor[];
      static exports(module: Module): ModuleExportDescriptor[];
    }
    class Instance {
      constructor(module: Module, imports?: object);
      readonly exports: Exports;
    }
    class RuntimeError extends Error {}
    function compile(bytes: ArrayBufferView | ArrayBuffer): Promise<Module>;
  }
}
