/**
 * The "Agents' Tasks" tree view (`acasTasks`): renders `taskTree.ts`'s nodes from the
 * `TasksModel` (and every 15 s while visible, for the lease countdowns); clicking a locked path
 * that names a file opens it.
 */
import * as vscode from 'vscode';
import { buildTaskTree, type StateNode, type TaskTreeNode } from './taskTree';
import type { TasksModel } from './tasks';

export const VIEW_ID = 'acasTasks';

/** How often the lease countdowns are redrawn while the view is visible. */
const REDRAW_MS = 15_000;

export class TasksView implements vscode.TreeDataProvider<TaskTreeNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  private readonly disposables: vscode.Disposable[];
  private tree: StateNode[] = [];
  readonly onDidChangeTreeData = this.changed.event;
  readonly view: vscode.TreeView<TaskTreeNode>;

  constructor(private readonly model: TasksModel) {
    this.view = vscode.window.createTreeView(VIEW_ID, { treeDataProvider: this, showCollapseAll: true });
    const redraw = setInterval(() => {
      if (this.view.visible) this.update();
    }, REDRAW_MS);
    this.disposables = [this.view, this.changed, model.onDidChange(() => this.update()), { dispose: () => clearInterval(redraw) }];
    this.update();
  }

  private update(): void {
    const result = this.model.result;
    this.tree = result ? buildTaskTree(result, Date.now()) : [];
    this.view.message =
      result === undefined
        ? 'Waiting for the ACAS server'
        : result.tasks.length === 0
          ? 'No tasks: agents add them over MCP, people with `acas task create`'
          : undefined;
    this.changed.fire();
  }

  getChildren(node?: TaskTreeNode): TaskTreeNode[] {
    if (!node) return this.tree;
    if (node.kind === 'state') return node.tasks;
    if (node.kind === 'task') return node.locks;
    return [];
  }

  getTreeItem(node: TaskTreeNode): vscode.TreeItem {
    const Collapsed = vscode.TreeItemCollapsibleState;
    switch (node.kind) {
      case 'state': {
        const item = new vscode.TreeItem(node.label, Collapsed.Expanded);
        item.id = node.id;
        item.description = node.description;
        item.iconPath = new vscode.ThemeIcon(node.icon.id, node.icon.color ? new vscode.ThemeColor(node.icon.color) : undefined);
        return item;
      }
      case 'task': {
        const item = new vscode.TreeItem(node.label, node.locks.length > 0 ? Collapsed.Collapsed : Collapsed.None);
        item.id = node.id;
        item.description = node.description;
        item.tooltip = node.tooltip;
        item.accessibilityInformation = { label: node.ariaLabel };
        return item;
      }
      case 'lock': {
        const item = new vscode.TreeItem(node.label, Collapsed.None);
        item.id = node.id;
        item.description = node.description;
        item.iconPath = new vscode.ThemeIcon('lock');
        const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
        if (folder && !/[*?[{\\]/.test(node.glob)) {
          const uri = vscode.Uri.joinPath(folder, node.glob);
          item.resourceUri = uri;
          item.command = { command: 'vscode.open', title: 'Open locked file', arguments: [uri] };
        }
        return item;
      }
    }
  }

  /** Shows the view and refreshes its data. */
  async show(): Promise<void> {
    await vscode.commands.executeCommand(`${VIEW_ID}.focus`);
    await this.model.refresh();
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
