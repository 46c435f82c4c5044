export {
  AgentClient,
  SETTLED_STATES,
  isFailureState,
  isSettled,
  type AgentClientOptions,
  type ConsoleAttachOptions,
  type ConsoleClosed,
  type ConsoleHandle,
  type CreateProcessRequest,
  type ProcessRef,
  type RequestLogEntry,
  type WaitOptions,
} from './client.js';
export {
  AgentApiError,
  AgentClientError,
  AgentProtocolError,
  AgentUnreachableError,
  AgentWaitTimeoutError,
} from './errors.js';
export {
  ConsoleFrameSchema,
  IndexDocumentSchema,
  ListDocumentSchema,
  StatusDocumentSchema,
  type ConsoleFrame,
  type IndexDocument,
  type ListDocument,
  type Progress,
  type StatusDocument,
} from './schemas.js';
