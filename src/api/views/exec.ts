// GET /exec/{id}/json: moby's ExecInspect.
import { detachKeyCodes } from '../../core/detach-keys';
import type { ContainerRecord } from '../../containers/containers';
import type { ExecRecord } from '../../containers/execs';

export function execInspectView(e: ExecRecord, rec: ContainerRecord | undefined): Record<string, unknown> {
  return {
    CanRemove: false,
    ContainerID: e.ContainerID,
    // moby keeps the parsed bytes ([]byte, so base64 in JSON)
    DetachKeys: Buffer.from(detachKeyCodes(e.Config.DetachKeys) ?? []).toString('base64'),
    ExitCode: e.ExitCode,
    ID: e.ID,
    OpenStderr: e.Config.AttachStderr,
    OpenStdin: e.Config.AttachStdin,
    OpenStdout: e.Config.AttachStdout,
    ProcessConfig: {
      arguments: e.Config.Cmd.slice(1),
      entrypoint: e.Config.Cmd[0] ?? '',
      privileged: e.Config.Privileged,
      tty: e.Config.Tty,
      user: e.Config.User || rec?.Config.User || '',
    },
    Running: e.Running,
    Pid: e.Pid,
  };
}
