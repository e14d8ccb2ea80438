// The one place that names the Daytona SDK package. daytona/*.ts (outside the bun workspaces, so
// it cannot resolve packages itself) imports the SDK through this file.
export {
  Daytona,
  DaytonaError,
  DaytonaNotFoundError,
  Image,
  SandboxState,
  SnapshotState,
} from "@daytonaio/sdk";
export type { DaytonaConfig, Sandbox } from "@daytonaio/sdk";
