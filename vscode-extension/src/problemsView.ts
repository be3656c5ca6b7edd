/**
 * The "Problems by Class" tree view (`acasProblems`): renders `problemTree.ts`'s nodes from the
 * latest `acas/problems` answer; clicking a location opens it at its range.
 */
import * as vscode from 'vscode';
import type { ProblemsModel } from './problems';
import { buildTree, type TreeNode } from './problemTree';

export const VIEW_ID = 'acasProblems';

const SEVERITY_ICON: Record<string, vscode.ThemeIcon> = {
  error: new vscode.ThemeIcon('error', new vscode.ThemeColor('problemsErrorIcon.foreground')),
  warning: new vscode.ThemeIcon('warning', new vscode.ThemeColor('problemsWarningIcon.foreground')),
  information: new vscode.ThemeIcon('info', new vscode.ThemeColor('problemsInfoIcon.foreground')),
  hint: new vscode.ThemeIcon('lightbulb'),
};

export class ProblemsView implements vscode.TreeDataProvider<TreeNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  private readonly disposables: vscode.Disposable[];
  readonly onDidChangeTreeData = this.changed.event;
  readonly view: vscode.TreeView<TreeNode>;

  constructor(private readonly model: ProblemsModel) {
    this.view = vscode.window.createTreeView(VIEW_ID, { treeDataProvider: this, showCollapseAll: true });
    this.disposables = [this.view, this.changed, model.onDidChange(() => this.update())];
    this.update();
  }

  private update(): void {
    const problems = this.model.problems;
    this.view.message = problems === undefined ? 'Waiting for the ACAS server' : problems.length === 0 ? 'No open problems' : undefined;
    this.changed.fire();
  }

  getChildren(node?: TreeNode): TreeNode[] {
    if (!node) {
      const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
      return buildTree(this.model.problems ?? [], root);
    }
    if (node.kind === 'category') return node.problems;
    if (node.kind === 'problem') return node.locations;
    return [];
  }

  getTreeItem(node: TreeNode): vscode.TreeItem {
    const Collapsed = vscode.TreeItemCollapsibleState;
    switch (node.kind) {
      case 'category': {
        const item = new vscode.TreeItem(node.label, Collapsed.Expanded);
        item.description = node.description;
        item.iconPath = new vscode.ThemeIcon('symbol-folder');
        return item;
      }
      case 'problem': {
        const item = new vscode.TreeItem(node.label, Collapsed.Collapsed);
        item.description = node.description;
        item.tooltip = node.tooltip;
        item.accessibilityInformation = { label: node.ariaLabel };
        item.iconPath = SEVERITY_ICON[node.problem.severity];
        item.contextValue = 'problem';
        return item;
      }
      case 'location': {
        const item = new vscode.TreeItem(node.label, Collapsed.None);
        const { start, end } = node.location.range;
        const selection = new vscode.Range(start.line, start.character, end.line, end.character);
        item.iconPath = vscode.ThemeIcon.File;
        item.resourceUri = vscode.Uri.parse(node.location.uri);
        item.command = {
          command: 'vscode.open',
          title: 'Open location',
          arguments: [item.resourceUri, { selection } satisfies vscode.TextDocumentShowOptions],
        };
        return item;
      }
    }
  }

  /** Shows the view and refreshes its data. */
  async reveal(): Promise<void> {
    await vscode.commands.executeCommand(`${VIEW_ID}.focus`);
    await this.model.refresh();
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
