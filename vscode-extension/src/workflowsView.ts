/**
 * The "Workflows" tree view (`acasWorkflows`): renders `workflowTree.ts`'s nodes from the
 * `WorkflowsModel` (and every 30 s while visible, for the relative times); clicking a workflow
 * opens its file; with a shared store, a "Team runs" node lists every clone's runs. Run, cancel
 * and re-run (of this workspace's runs) are inline actions
 * contributed in `package.json` on the items' `contextValue`s.
 */
import * as vscode from 'vscode';
import { buildTeamNode, buildWorkflowTree, findRun, type Icon, type TeamNode, type WorkflowNode, type WorkflowTreeNode } from './workflowTree';
import type { WorkflowsModel } from './workflows';

export const VIEW_ID = 'acasWorkflows';

/** How often the relative times are redrawn while the view is visible. */
const REDRAW_MS = 30_000;

export class WorkflowsView implements vscode.TreeDataProvider<WorkflowTreeNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  private readonly disposables: vscode.Disposable[];
  private tree: WorkflowNode[] = [];
  private team: TeamNode | undefined;
  private readonly parents = new Map<string, WorkflowTreeNode>();
  readonly onDidChangeTreeData = this.changed.event;
  readonly view: vscode.TreeView<WorkflowTreeNode>;

  constructor(private readonly model: WorkflowsModel) {
    this.view = vscode.window.createTreeView(VIEW_ID, { treeDataProvider: this, showCollapseAll: true });
    const redraw = setInterval(() => {
      if (this.view.visible) this.update();
    }, REDRAW_MS);
    this.disposables = [this.view, this.changed, model.onDidChange(() => this.update()), { dispose: () => clearInterval(redraw) }];
    this.update();
  }

  private update(): void {
    const { model } = this;
    this.tree = buildWorkflowTree(model.workflows ?? [], model.runs, {
      nowMs: Date.now(),
      root: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath,
    });
    this.team = buildTeamNode(model.teamRuns, { nowMs: Date.now() });
    this.parents.clear();
    for (const run of this.team?.runs ?? []) {
      this.parents.set(run.id, this.team as TeamNode);
      for (const step of run.steps) this.parents.set(step.id, run);
    }
    for (const workflow of this.tree) {
      for (const run of workflow.runs) {
        this.parents.set(run.id, workflow);
        for (const step of run.steps) this.parents.set(step.id, run);
      }
    }
    this.view.message = !model.serverRunning
      ? 'Waiting for the ACAS server'
      : !model.capabilities.run
        ? 'This ACAS server does not run workflows'
        : model.workflows === undefined
          ? 'Loading workflows'
          : model.workflows.length === 0
            ? 'No workflows: add one as .acas/workflows/NAME.yaml'
            : undefined;
    this.changed.fire();
  }

  getChildren(node?: WorkflowTreeNode): WorkflowTreeNode[] {
    if (!node) return this.team ? [...this.tree, this.team] : this.tree;
    if (node.kind === 'workflow' || node.kind === 'team') return node.runs;
    if (node.kind === 'run' || node.kind === 'teamRun') return node.steps;
    return [];
  }

  getParent(node: WorkflowTreeNode): WorkflowTreeNode | undefined {
    return this.parents.get(node.id);
  }

  getTreeItem(node: WorkflowTreeNode): vscode.TreeItem {
    const Collapsed = vscode.TreeItemCollapsibleState;
    switch (node.kind) {
      case 'workflow': {
        // Expanded even without runs: VS Code keeps an item's first state, and its first run should show.
        const item = new vscode.TreeItem(node.label, Collapsed.Expanded);
        item.id = node.id;
        item.description = node.description;
        item.tooltip = node.tooltip;
        item.contextValue = node.contextValue;
        item.iconPath = new vscode.ThemeIcon('symbol-event');
        const uri = vscode.Uri.parse(node.workflow.uri);
        item.resourceUri = uri;
        item.command = { command: 'vscode.open', title: 'Open workflow file', arguments: [uri] };
        return item;
      }
      case 'run': {
        const item = new vscode.TreeItem(node.label, node.steps.length > 0 ? Collapsed.Collapsed : Collapsed.None);
        item.id = node.id;
        item.description = node.description;
        item.tooltip = node.tooltip;
        item.accessibilityInformation = { label: node.ariaLabel };
        item.contextValue = node.contextValue;
        item.iconPath = themeIcon(node.icon);
        return item;
      }
      case 'team': {
        const item = new vscode.TreeItem(node.label, Collapsed.Collapsed);
        item.id = node.id;
        item.description = node.description;
        item.tooltip = node.tooltip;
        item.iconPath = new vscode.ThemeIcon('organization');
        return item;
      }
      case 'teamRun': {
        const item = new vscode.TreeItem(node.label, node.steps.length > 0 ? Collapsed.Collapsed : Collapsed.None);
        item.id = node.id;
        item.description = node.description;
        item.tooltip = node.tooltip;
        item.accessibilityInformation = { label: node.ariaLabel };
        item.iconPath = themeIcon(node.icon);
        return item;
      }
      case 'step':
      case 'teamStep': {
        const item = new vscode.TreeItem(node.label, Collapsed.None);
        item.id = node.id;
        item.description = node.description;
        item.tooltip = node.tooltip;
        item.iconPath = themeIcon(node.icon);
        return item;
      }
    }
  }

  /** Shows the view and refreshes its data. */
  async show(): Promise<void> {
    await vscode.commands.executeCommand(`${VIEW_ID}.focus`);
    await this.model.refresh();
  }

  /** Selects run `runId` (fetching the list first when it is not shown yet). */
  async revealRun(runId: number): Promise<void> {
    await vscode.commands.executeCommand(`${VIEW_ID}.focus`);
    if (!findRun(this.tree, runId)) await this.model.refresh();
    const node = findRun(this.tree, runId);
    if (node) await this.view.reveal(node, { select: true, focus: true, expand: true });
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

function themeIcon(icon: Icon): vscode.ThemeIcon {
  return new vscode.ThemeIcon(icon.id, icon.color ? new vscode.ThemeColor(icon.color) : undefined);
}
