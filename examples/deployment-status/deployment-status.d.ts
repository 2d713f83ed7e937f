/** The shared status file's contents. */
export interface DeploymentStatus {
  /** Incremented by every update. */
  revision: number;
  /** Each step's state, e.g. `{ network: 'done' }`. */
  steps: Record<string, string>;
  /** Updates that found the mutex abandoned by a holder that died. */
  recoveries: number;
  [field: string]: unknown;
}

export interface StatusOptions {
  /** The status file; default `DEPLOYMENT_STATUS_FILE`, else `deployment-status.json` in the OS temp dir. */
  file?: string;
  /** Milliseconds to wait for the mutex; default 30 000. */
  timeout?: number;
}

export declare const STATUS_MUTEX: string;
export declare function defaultStatusFile(): string;
export declare function initialStatus(): DeploymentStatus;
export declare function getDeploymentStatus(options?: StatusOptions): Promise<DeploymentStatus>;
export declare function updateDeploymentStatus(
  change: Record<string, string> | ((status: DeploymentStatus) => DeploymentStatus | void | Promise<DeploymentStatus | void>),
  options?: StatusOptions,
): Promise<{ status: DeploymentStatus; recovered: boolean }>;
