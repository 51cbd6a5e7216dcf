"""The desktop app's widgets: the main window, the jobs, workers and Managers panels, dialogs and graphs."""
