// The Node-RED editor's global `RED`, for the functions browser.test.js runs inside the editor page (page.evaluate).
//
// @types/node-red__editor-client describes an older editor in two places the tests use: Node-RED 4.1's
// view.importNodes takes the nodes (an array, or JSON text) and an options object, and editor.editConfig's
// `prefix` may be left out.
import type { EditorRED } from 'node-red';

interface ImportOptions {
  addFlow?: boolean;
  touchImport?: boolean;
  generateIds?: boolean;
  generateDefaultNames?: boolean;
  notify?: boolean;
  applyNodeDefaults?: boolean;
}

type Editor41 = Omit<EditorRED, 'view' | 'editor'> & {
  view: Omit<EditorRED['view'], 'importNodes'> & { importNodes(nodes: object[] | string, options?: ImportOptions): void };
  editor: Omit<EditorRED['editor'], 'editConfig'> & { editConfig(name: string, type: string, id: string, prefix?: string): void };
};

declare global {
  var RED: Editor41;
}
