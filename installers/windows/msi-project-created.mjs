/**
 * electron-builder `msiProjectCreated` hook: adds silent fleet enrollment to
 * the MSI that electron-builder's own WiX template describes. electron-builder
 * compiles only its generated project.wxs (no extra .wxs sources), so this
 * hook edits that file on disk before candle runs.
 *
 *   msiexec /i "GoGrid Worker 1.2.0.msi" COORDINATOR=grid.example.com:8443 TOKEN=gg1.… /qn
 *   msiexec /i "GoGrid Worker 1.2.0.msi" COORDINATOR=… TOKEN=… WORKERNAME=lab-pc-12 PRESET=dedicated /qn
 *
 * The properties become `[worker]` keys of provisioning.toml, written by
 * Windows Installer's own IniFile table (no custom-action code to sign or to
 * be blocked by policy), so `coordinator="…"` lines are TOML as they are:
 *   per-machine MSI  %ProgramData%\GoGrid\provisioning.toml
 *   per-user MSI     %APPDATA%\GoGrid\provisioning.toml
 * Uninstall removes the lines it wrote (RemoveIniValues); a property left out
 * writes nothing. TOKEN is Hidden, so verbose MSI logs do not record it.
 * A per-machine package also starts the app at every user's login.
 *
 * Run here by test/installers/msi.test.ts on electron-builder's real template;
 * compiled by WiX only on the Windows release runner.
 */
import { readFile, writeFile } from 'node:fs/promises';

/** Public properties (upper case, so msiexec accepts them on the command line) → provisioning.toml keys. */
const MSI_PROVISIONING_PROPERTIES = [
  { property: 'COORDINATOR', key: 'coordinator', hidden: false },
  { property: 'TOKEN', key: 'token', hidden: true },
  { property: 'WORKERNAME', key: 'name', hidden: false },
  { property: 'PRESET', key: 'preset', hidden: false },
];

const MARK = 'GoGrid silent enrollment';
/** The value the per-machine package adds under HKLM\Software\Microsoft\Windows\CurrentVersion\Run, and the argument it starts the app with. */
export const RUN_VALUE_NAME = 'GoGrid Worker';
export const MACHINE_LOGIN_FLAG = '--login-item=machine';

/** @param {string} projectFile path of project.wxs */
export async function msiProjectCreated(projectFile) {
  await writeFile(projectFile, addProvisioning(await readFile(projectFile, 'utf8')));
}

/**
 * @param {string} wxs the project electron-builder rendered from its template
 * @returns {string} the same project with the provisioning properties and components
 */
function addProvisioning(wxs) {
  if (wxs.includes(MARK)) return wxs;
  // electron-builder's template says Value="1" for a per-machine package and Value="2" (per-user by default) otherwise.
  const scope = /<Property Id="ALLUSERS" Secure="yes" Value="1"\/>/.test(wxs) ? 'machine' : 'user';
  const folder = scope === 'machine' ? 'CommonAppDataFolder' : 'AppDataFolder';
  // A component needs a key path; a registry value under the install scope's hive is one that ICE38 accepts per-user.
  const hive = scope === 'machine' ? 'HKLM' : 'HKCU';
  // Only the coordinator and the token together enroll; the optional keys ride along.
  const components = MSI_PROVISIONING_PROPERTIES.map(({ property, key }) => {
    const condition = property === 'COORDINATOR' || property === 'TOKEN' ? 'COORDINATOR AND TOKEN' : `${property} AND COORDINATOR AND TOKEN`;
    return `      <Component Id="GoGridProvisioning_${key}" Guid="*">
        <Condition><![CDATA[${condition}]]></Condition>
        <RegistryValue Root="${hive}" Key="Software\\GoGrid\\Worker\\Provisioning" Name="${key}" Type="integer" Value="1" KeyPath="yes"/>
        <IniFile Id="GoGridProvisioning_${key}" Action="addLine" Directory="GOGRIDPROVISIONINGDIR" Name="provisioning.toml" Section="worker" Key="${key}" Value="&quot;[${property}]&quot;"/>
        <RemoveFolder Id="GoGridProvisioningDir_${key}" Directory="GOGRIDPROVISIONINGDIR" On="uninstall"/>
      </Component>`;
  }).join('\n');
  // Per machine, the app starts at every user's login (a silent fleet install starts nothing
  // otherwise: each user's own login item is written on the app's first run). HKLM Run, removed
  // with the package; a user who switches Start at login off is honoured by the app itself,
  // which quits at once when this entry starts it (src/main/login-item.ts, MACHINE_LOGIN_FLAG).
  const machineLogin =
    scope === 'machine'
      ? `
      <Component Id="GoGridMachineLogin" Guid="*" Directory="APPLICATIONFOLDER">
        <RegistryValue Root="HKLM" Key="Software\\Microsoft\\Windows\\CurrentVersion\\Run" Name="${RUN_VALUE_NAME}" Type="string" Value="&quot;[#mainExecutable]&quot; ${MACHINE_LOGIN_FLAG}" KeyPath="yes"/>
      </Component>`
      : '';
  const properties = MSI_PROVISIONING_PROPERTIES.map(({ property, hidden }) => `    <Property Id="${property}" Secure="yes"${hidden ? ' Hidden="yes"' : ''}/>`).join('\n');
  const block = `
    <!-- ${MARK} (installers/windows/msi-project-created.mjs): ${scope} scope -->
${properties}
    <DirectoryRef Id="TARGETDIR">
      <Directory Id="${folder}">
        <Directory Id="GOGRIDPROVISIONINGDIR" Name="GoGrid"/>
      </Directory>
    </DirectoryRef>
    <ComponentGroup Id="GoGridProvisioning" Directory="GOGRIDPROVISIONINGDIR">
${components}${machineLogin}
    </ComponentGroup>
`;
  const featureRef = '<ComponentGroupRef Id="ProductComponents"/>';
  if (!wxs.includes(featureRef) || !wxs.includes('</Product>')) {
    throw new Error(`${MARK}: project.wxs no longer has ${featureRef} and </Product>; electron-builder's MSI template changed, update this hook`);
  }
  return wxs
    .replace(featureRef, `${featureRef}\n      <ComponentGroupRef Id="GoGridProvisioning"/>`)
    .replace('</Product>', `${block}  </Product>`);
}
