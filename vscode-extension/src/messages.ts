/**
 * Typed JSON-RPC message types for ACAS's custom methods, built from the generated
 * `protocol.ts`, so that a call with the wrong params or result type fails to compile. Shared by
 * the extension and the integration test (no VS Code import).
 */
import { NotificationType, NotificationType0, RequestType, RequestType0 } from 'vscode-languageserver-protocol';
import {
  Methods,
  type EscalationDoneParams,
  type ExternalDiagnosticsParams,
  type FixFeedbackParams,
  type PlanReadyParams,
  type Problem,
  type ProblemsParams,
  type SpendResult,
  type StatusResult,
  type StoreStatusParams,
  type TasksParams,
  type TasksResult,
  type WorkflowRunParams,
  type WorkflowsResult,
} from './protocol';

export const externalDiagnostics = new NotificationType<ExternalDiagnosticsParams>(Methods.externalDiagnostics);
export const problems = new RequestType<ProblemsParams, Problem[], void>(Methods.problems);
export const status = new RequestType0<StatusResult, void>(Methods.status);
export const spend = new RequestType0<SpendResult, void>(Methods.spend);
export const fixFeedback = new NotificationType<FixFeedbackParams>(Methods.fixFeedback);
export const workflowRun = new NotificationType<WorkflowRunParams>(Methods.workflowRun);
export const workflows = new RequestType0<WorkflowsResult, void>(Methods.workflows);
export const escalationDone = new NotificationType<EscalationDoneParams>(Methods.escalationDone);
export const planReady = new NotificationType<PlanReadyParams>(Methods.planReady);
export const tasks = new RequestType<TasksParams, TasksResult, void>(Methods.tasks);
export const tasksChanged = new NotificationType0(Methods.tasksChanged);
export const runsChanged = new NotificationType0(Methods.runsChanged);
export const storeStatus = new NotificationType<StoreStatusParams>(Methods.storeStatus);
export const spendChanged = new NotificationType0(Methods.spendChanged);
