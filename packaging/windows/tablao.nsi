; Tablao's Windows installer (NSIS 3, builds on Linux too: `makensis`). packaging/windows/build_installer.py calls
; it with the bundle folder and version:
;   makensis -DBUNDLE_DIR=dist\tablao -DVERSION=0.1.0 -DOUTFILE=Tablao-0.1.0-setup.exe packaging/windows/tablao.nsi
;
; Per-user by default (no administrator rights: %LOCALAPPDATA%\Programs\Tablao); /ALLUSERS installs for everyone
; (Program Files; needs an administrator). Start-menu entries for the app and the tray agent; optionally the tray
; agent starts at login. Silent roll-out:
;   Tablao-setup.exe /S [/ALLUSERS] [/MANAGER=http://manager:8471] [/SECRET=... | /SECRETFILE=path]
;                       [/AUTOSTART=0|1] [/D=C:\path\Tablao]
; (/AUTOSTART is on by default when /MANAGER is given.) tablao:// links open the desktop app. The uninstaller removes the program, its shortcuts and its
; autostart entry and keeps the user's data and settings, unless /PURGE is given (or the user says so).

Unicode true
Target amd64-unicode
SetCompressor /SOLID lzma
RequestExecutionLevel user
ManifestDPIAware true

!ifndef VERSION
  !define VERSION "0.0.0"
!endif
!ifndef BUNDLE_DIR
  !error "BUNDLE_DIR must name the PyInstaller bundle folder (the one holding tablao.exe)"
!endif
!ifndef OUTFILE
  !define OUTFILE "Tablao-${VERSION}-setup.exe"
!endif
!ifndef ICON
  !define ICON "..\..\resources\icons\tablao.ico"
!endif

!define APP "Tablao"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\Tablao"
!define RUN_KEY "Software\Microsoft\Windows\CurrentVersion\Run"
; The same value the tray agent's own "Start at login" writes, so either can turn it off.
!define RUN_VALUE "Tablao Tray"
; tablao://job/ID links (the Blender add-on shows them after a submit) open the desktop app on that job
!define URL_KEY "Software\Classes\tablao"

!macro RegisterLinks ROOT
  WriteRegStr ${ROOT} "${URL_KEY}" "" "URL:Tablao job link"
  WriteRegStr ${ROOT} "${URL_KEY}" "URL Protocol" ""
  WriteRegStr ${ROOT} "${URL_KEY}\DefaultIcon" "" "$INSTDIR\tablao.ico"
  WriteRegStr ${ROOT} "${URL_KEY}\shell\open\command" "" '"$INSTDIR\tablao-desktop.exe" "%1"'
!macroend

!include "MUI2.nsh"
!include "FileFunc.nsh"
!include "LogicLib.nsh"
!include "x64.nsh"

Name "${APP}"
OutFile "${OUTFILE}"
Icon "${ICON}"
UninstallIcon "${ICON}"
BrandingText "${APP} ${VERSION}"
InstallDir "$LOCALAPPDATA\Programs\${APP}"
ShowInstDetails show

VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "${APP}"
VIAddVersionKey "FileDescription" "${APP} installer"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "LegalCopyright" "GPL-3.0-or-later"

Var AllUsers
Var Manager
Var Secret
Var SecretFile
Var Autostart
Var Purge

!define MUI_ICON "${ICON}"
!define MUI_UNICON "${ICON}"
!define MUI_FINISHPAGE_RUN "$INSTDIR\tablao-desktop.exe"
!define MUI_FINISHPAGE_RUN_TEXT "Open Tablao"
!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_COMPONENTS
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

Section "Tablao (required)" SecMain
  SectionIn RO
  SetOutPath "$INSTDIR"
  File /r "${BUNDLE_DIR}\*.*"
  File "/oname=tablao.ico" "${ICON}"
  WriteUninstaller "$INSTDIR\Uninstall.exe"
  ; What the uninstaller needs to know about this installation.
  WriteINIStr "$INSTDIR\install.ini" "install" "allusers" "$AllUsers"
  WriteINIStr "$INSTDIR\install.ini" "install" "version" "${VERSION}"

  CreateDirectory "$SMPROGRAMS\${APP}"
  CreateShortcut "$SMPROGRAMS\${APP}\Tablao.lnk" "$INSTDIR\tablao-desktop.exe" "" "$INSTDIR\tablao.ico"
  CreateShortcut "$SMPROGRAMS\${APP}\Tablao Tray.lnk" "$INSTDIR\tablao-tray.exe" "" "$INSTDIR\tablao.ico"
  CreateShortcut "$SMPROGRAMS\${APP}\Uninstall Tablao.lnk" "$INSTDIR\Uninstall.exe"

  ; The farm's settings for the tray agent, kept where its login entry reads them.
  ${If} $Secret != ""
    CreateDirectory "$APPDATA\${APP}"
    FileOpen $R3 "$APPDATA\${APP}\worker-registration.secret" w
    FileWrite $R3 "$Secret"
    FileClose $R3
  ${ElseIf} $SecretFile != ""
    CreateDirectory "$APPDATA\${APP}"
    CopyFiles /SILENT "$SecretFile" "$APPDATA\${APP}\worker-registration.secret"
  ${EndIf}

  ${If} $AllUsers == 1
    WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayName" "${APP}"
    WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
    WriteRegStr HKLM "${UNINSTALL_KEY}" "Publisher" "${APP}"
    WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\tablao.ico"
    WriteRegStr HKLM "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
    WriteRegStr HKLM "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\Uninstall.exe"'
    WriteRegStr HKLM "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\Uninstall.exe" /S'
    WriteRegDWORD HKLM "${UNINSTALL_KEY}" "NoModify" 1
    WriteRegDWORD HKLM "${UNINSTALL_KEY}" "NoRepair" 1
    !insertmacro RegisterLinks HKLM
  ${Else}
    WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayName" "${APP}"
    WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
    WriteRegStr HKCU "${UNINSTALL_KEY}" "Publisher" "${APP}"
    WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\tablao.ico"
    WriteRegStr HKCU "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
    WriteRegStr HKCU "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\Uninstall.exe"'
    WriteRegStr HKCU "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\Uninstall.exe" /S'
    WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoModify" 1
    WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoRepair" 1
    !insertmacro RegisterLinks HKCU
  ${EndIf}
SectionEnd

Section /o "Start the tray agent at login" SecAutostart
  StrCpy $R4 '"$INSTDIR\tablao-tray.exe"'
  ${If} $Manager != ""
    StrCpy $R4 '$R4 --manager "$Manager"'
  ${EndIf}
  ${If} ${FileExists} "$APPDATA\${APP}\worker-registration.secret"
    StrCpy $R4 '$R4 --registration-secret-file "$APPDATA\${APP}\worker-registration.secret"'
  ${EndIf}
  ${If} $AllUsers == 1
    WriteRegStr HKLM "${RUN_KEY}" "${RUN_VALUE}" $R4
  ${Else}
    WriteRegStr HKCU "${RUN_KEY}" "${RUN_VALUE}" $R4
  ${EndIf}
SectionEnd

; Pops an option name ("/MANAGER="), pushes its value from the command line, "" when it is not there. A value
; runs to the next " /" or the end, so URLs keep their slashes (NSIS's GetOptions would cut them at the first
; "/"); quotes around it are removed. Option names match in any case.
Function ArgValue
  Exch $R1
  Push $R2
  Push $R3
  Push $R4
  Push $R5
  Push $R6
  ${GetParameters} $R2
  StrLen $R5 $R1
  StrCpy $R3 0
  StrCpy $R6 ""
  find:
    StrCpy $R4 $R2 $R5 $R3
    StrCmp $R4 "" done
    StrCmp $R4 $R1 found
    IntOp $R3 $R3 + 1
    Goto find
  found:
    IntOp $R3 $R3 + $R5
    StrCpy $R6 $R2 "" $R3
    StrCpy $R3 0
  cut:
    StrCpy $R4 $R6 2 $R3
    StrCmp $R4 "" unquote
    StrCmp $R4 " /" 0 next
    StrCpy $R6 $R6 $R3
    Goto unquote
  next:
    IntOp $R3 $R3 + 1
    Goto cut
  unquote:
    StrCpy $R4 $R6 1
    StrCmp $R4 '"' 0 done
    StrCpy $R6 $R6 "" 1
    StrCpy $R4 $R6 1 -1
    StrCmp $R4 '"' 0 done
    StrCpy $R6 $R6 -1
  done:
  StrCpy $R1 $R6
  Pop $R6
  Pop $R5
  Pop $R4
  Pop $R3
  Pop $R2
  Exch $R1
FunctionEnd

Function .onInit
  ${GetParameters} $R0
  StrCpy $AllUsers 0
  ClearErrors
  ${GetOptions} $R0 "/ALLUSERS" $R1
  ${IfNot} ${Errors}
    StrCpy $AllUsers 1
  ${EndIf}
  Push "/MANAGER="
  Call ArgValue
  Pop $Manager
  Push "/SECRET="
  Call ArgValue
  Pop $Secret
  Push "/SECRETFILE="
  Call ArgValue
  Pop $SecretFile
  Push "/AUTOSTART="
  Call ArgValue
  Pop $Autostart
  ${If} $Autostart == ""
    ${If} $Manager != ""
      StrCpy $Autostart 1
    ${Else}
      StrCpy $Autostart 0
    ${EndIf}
  ${EndIf}
  ${If} $AllUsers == 1
    UserInfo::GetAccountType
    Pop $R2
    ${If} $R2 != "Admin"
      MessageBox MB_ICONSTOP "/ALLUSERS installs Tablao for everyone and needs an administrator." /SD IDOK
      SetErrorLevel 740
      Quit
    ${EndIf}
    ; A /D= given on the command line has already set $INSTDIR; keep it. (Compared before the context changes
    ; what $LOCALAPPDATA means.)
    ${If} $INSTDIR == "$LOCALAPPDATA\Programs\${APP}"
      StrCpy $INSTDIR "$PROGRAMFILES64\${APP}"
    ${EndIf}
    SetShellVarContext all
  ${Else}
    SetShellVarContext current
  ${EndIf}
  ${If} $Autostart == 1
    SectionSetFlags ${SecAutostart} ${SF_SELECTED}
  ${EndIf}
FunctionEnd

!insertmacro MUI_FUNCTION_DESCRIPTION_BEGIN
  !insertmacro MUI_DESCRIPTION_TEXT ${SecMain} "The desktop app, the tray agent and the tablao command."
  !insertmacro MUI_DESCRIPTION_TEXT ${SecAutostart} "Start the tray agent, which renders for the farm when you allow it, when you log in."
!insertmacro MUI_FUNCTION_DESCRIPTION_END

Function un.onInit
  ReadINIStr $AllUsers "$INSTDIR\install.ini" "install" "allusers"
  ${If} $AllUsers == 1
    SetShellVarContext all
  ${Else}
    SetShellVarContext current
  ${EndIf}
  StrCpy $Purge 0
  ${GetParameters} $R0
  ClearErrors
  ${GetOptions} $R0 "/PURGE" $R1
  ${IfNot} ${Errors}
    StrCpy $Purge 1
  ${ElseIfNot} ${Silent}
    MessageBox MB_YESNO|MB_DEFBUTTON2 "Also delete your Tablao settings and data (the local farm, the tray's settings)?" IDNO +2
    StrCpy $Purge 1
  ${EndIf}
FunctionEnd

Section "Uninstall"
  ; Only what the installer put there: a folder chosen with /D= may hold other files.
  RMDir /r "$INSTDIR\_internal"
  Delete "$INSTDIR\tablao.exe"
  Delete "$INSTDIR\tablao-desktop.exe"
  Delete "$INSTDIR\tablao-tray.exe"
  Delete "$INSTDIR\tablao.ico"
  Delete "$INSTDIR\install.ini"
  Delete "$INSTDIR\Uninstall.exe"
  RMDir "$INSTDIR"

  Delete "$SMPROGRAMS\${APP}\Tablao.lnk"
  Delete "$SMPROGRAMS\${APP}\Tablao Tray.lnk"
  Delete "$SMPROGRAMS\${APP}\Uninstall Tablao.lnk"
  RMDir "$SMPROGRAMS\${APP}"

  ; The login entry goes whoever wrote it (this installer or the tray's own setting).
  DeleteRegValue HKCU "${RUN_KEY}" "${RUN_VALUE}"
  ${If} $AllUsers == 1
    DeleteRegValue HKLM "${RUN_KEY}" "${RUN_VALUE}"
    DeleteRegKey HKLM "${UNINSTALL_KEY}"
    DeleteRegKey HKLM "${URL_KEY}"
  ${Else}
    DeleteRegKey HKCU "${UNINSTALL_KEY}"
    DeleteRegKey HKCU "${URL_KEY}"
  ${EndIf}

  ${If} $Purge == 1
    RMDir /r "$APPDATA\${APP}"
    SetShellVarContext current
    RMDir /r "$LOCALAPPDATA\tablao"
    RMDir /r "$APPDATA\${APP}"
    DeleteRegKey HKCU "Software\${APP}"
  ${EndIf}
SectionEnd
